"""FixMatch + UDAL / BEM under torchrun with two CPU processes (gloo).

What must hold exactly: DDP keeps the replicas identical, the running estimates that feed the
losses and the mix bank (UDAL's p_hat, BEM's d^u / e^x / e^u / tau_e) are all-reduced so both
ranks hold the same numbers, both ranks return rank 0's metrics, and only rank 0 writes files.
Run as a script (``torchrun ... test_fixmatch_ddp.py CONFIGS REPORT_DIR``) this file is the worker.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

BASE = dict(model="small_cnn", data="digits", imb_ratio=10, epochs=2, batch_size=8, unlabeled_ratio=3,
            iters_per_epoch=3, threshold=0.5, ema_decay=0.9, bem_warmup_epochs=1.0, num_threads=1, progress=False,
            save_model=False)


def test_two_process_gloo_run_keeps_ranks_in_step(tmp_path):
    configs = [{**BASE, "plugin": p, "output_dir": str(tmp_path / p)} for p in ("udal", "bem")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__,
           json.dumps(configs), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    for plugin in ("udal", "bem"):
        r0, r1 = (json.loads((tmp_path / f"{plugin}_rank{r}.json").read_text()) for r in (0, 1))
        assert r0["world_size"] == r1["world_size"] == 2
        assert r0["params"] == r1["params"] and r0["metrics"] == r1["metrics"]
        assert r0["estimates"] == r1["estimates"] and len(r0["estimates"]) > 0
        assert r1["writes"] == 0 and r0["writes"] >= 2
        assert {p.name for p in (tmp_path / plugin).iterdir()} == {"last.pt", "log.json", "metrics.json"}
        log = json.loads((tmp_path / plugin / "log.json").read_text())
        assert [r["step"] for r in log] == [3, 6]
    assert json.loads((tmp_path / "bem_rank0.json").read_text())["estimates"]["step_count"] == 6


if __name__ == "__main__":
    import ltzoo.recipes.fixmatch as fm
    from ltzoo.engine.distributed import init_distributed, teardown
    from ltzoo.engine.ssl_data import make_ltssl_digits

    info = init_distributed("cpu")
    lab, unl, test = make_ltssl_digits(15, 60, 10, 10, seed=0, image_size=16)
    writes = {"n": 0}

    def counting(fn):
        def wrapper(*args, **kwargs):
            writes["n"] += 1
            return fn(*args, **kwargs)
        return wrapper

    fm.save_checkpoint, fm.write_json = counting(fm.save_checkpoint), counting(fm.write_json)
    for cfg in json.loads(sys.argv[1]):
        writes["n"] = 0
        captured = {}

        class Capture:
            def on_epoch_end(self, info_):
                captured.update({k: v.tolist() for k, v in info_["parts"].loss_fn.state_dict().items()
                                 if k.split(".")[-1] in ("p_hat", "unlabeled_dist", "entropy_labeled",
                                                         "entropy_unlabeled", "tau_e", "step_count")})

        result = fm.train_fixmatch(cfg, lab, unl, test, callbacks=[Capture()])
        report = {"rank": info.rank, "world_size": info.world_size, "writes": writes["n"],
                  "metrics": result["metrics"]["top1"],
                  "params": sum(float(p.detach().double().sum()) for p in result["model"].parameters()),
                  "estimates": {k.split(".")[-1]: v for k, v in captured.items()}}
        Path(sys.argv[2], f"{cfg['plugin']}_rank{info.rank}.json").write_text(json.dumps(report))
    teardown()
