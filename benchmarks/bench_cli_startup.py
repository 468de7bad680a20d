"""Start-up time of the ``ltzoo`` command: ``ltzoo --version`` and ``ltzoo list``, each in a fresh
process (what the console script does: import ``ltzoo.cli`` and call ``main``), against
``import ltzoo; ltzoo.create_model`` (the full package, torch and timm included) for scale.

    python -m benchmarks.bench_cli_startup [--repeats 7]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import write_result

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "ltzoo --version": "from ltzoo.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass",
    "ltzoo list": "from ltzoo.cli import main\nmain(['list'])",
    "import ltzoo + create_model (full package)": "import ltzoo\nltzoo.create_model('small_cnn')",
}


def _wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    results = {}
    for name, code in CASES.items():
        _wall(code)  # warm the file cache
        times = sorted(_wall(code) for _ in range(args.repeats))
        results[name] = {"median_s": round(times[len(times) // 2], 3), "min_s": round(times[0], 3),
                         "repeats": args.repeats}
        print(f"{name:<45} median {times[len(times) // 2]:.3f} s   min {times[0]:.3f} s")
    write_result("cli_startup", {"note": "wall time of a fresh Python process per call, measured on 2 CPU cores "
                                         "shared with other jobs", "results": results})


if __name__ == "__main__":
    main()
