"""BTM under torchrun (2 CPU processes, gloo): the subsets are shared out between the processes,
the fine-tuned models gathered, and the merge equals the single-process merge (each subset is
fine-tuned by one process with its own seed; only the floating-point summation order differs,
as the workers run one thread each), with only rank 0 writing files."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ltzoo
from ltzoo.recipes.btm import train_btm
from tests.recipes.btm_setup import btm_config, digits_data

ROOT = Path(__file__).resolve().parents[2]


def test_two_process_btm_equals_single_process(tmp_path):
    reports, out = tmp_path / "reports", tmp_path / "out"
    reports.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).with_name("btm_ddp_worker.py")), str(out), str(reports)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0, r1 = (json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world_size"] == 2 and r0["merged"] == r1["merged"] and r0["report"] == r1["report"]
    assert sorted(p.name for p in out.iterdir()) == ["btm_report.json"] + [f"finetuned_0{d}.safetensors" for d in range(3)]

    train, test = digits_data()
    torch.manual_seed(0)
    single = train_btm(ltzoo.create_model("small_cnn", num_classes=10), train, test, cfg=btm_config(), progress=False)
    sums = {k: float(v.double().sum()) for k, v in single["merged_state"].items()}
    assert sums.keys() == r0["merged"].keys()
    assert all(sums[k] == pytest.approx(r0["merged"][k], rel=1e-5, abs=1e-6) for k in sums)
    assert single["report"]["posttrained"]["top1"] == pytest.approx(r0["report"]["posttrained"]["top1"], abs=1.0)
