"""Shared helpers of the benchmark scripts: machine description, timing, result files."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """CPU / GPU name, core count and library versions of this machine."""
    import numpy
    import timm
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cpu_cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "versions": {"torch": torch.__version__, "timm": timm.__version__, "numpy": numpy.__version__},
    }
    try:
        import ltzoo

        info["versions"]["ltzoo"] = ltzoo.__version__
    except ImportError:
        pass
    return info


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_call(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median and minimum wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "repeats": repeats}


def run_isolated(module: str, args: list[str]) -> dict[str, Any]:
    """Run ``python -m module *args`` in a fresh process that prints one JSON line; return it.

    A fresh process per measurement keeps peak-memory readings independent of each other.
    """
    out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, check=False,
                         cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _command() -> str:
    """The command that ran this benchmark, with paths relative to the repository root."""
    root = Path(__file__).resolve().parent.parent
    args = []
    for arg in sys.argv:
        path = Path(arg)
        if path.is_absolute() and root in path.resolve().parents:
            arg = str(path.resolve().relative_to(root))
        args.append(arg)
    return " ".join(["python", *args])


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` plus command, machine and date to ``benchmarks/results/<name>.json`` atomically."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "command": _command(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=RESULTS_DIR, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path
