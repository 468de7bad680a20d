import pytest


@pytest.fixture(autouse=True)
def _isolated_run_records(tmp_path, monkeypatch):
    """Benchmark tests read and write run records under tmp_path, never the repository's kept ones."""
    import benchmarks.cifar10_lt as c10

    monkeypatch.setattr(c10, "RECORDS_DIR", tmp_path / "kept_records")
