"""Worker of test_distributed.py: ``torchrun --nproc_per_node=2 ddp_worker.py CONFIGS_JSON REPORT_DIR``.

Trains each config of the JSON list with ltzoo.recipes.supervised.train_supervised under DDP (gloo on CPU);
after run i each rank writes ``REPORT_DIR/run<i>_rank<r>.json`` = {"rank", "world_size",
"metrics", "params", "buffers", "writes"} (test instrumentation, outside the run folder).
``params`` / ``buffers`` are float64 sums of the final model's parameters / floating buffers;
``writes`` counts the calls of the recipe's file writers on that rank (only rank 0 may write).
"""
import json
import sys

import ltzoo.recipes.supervised as supervised
from ltzoo.engine.config import TrainConfig
from ltzoo.engine.data import build_datasets
from ltzoo.engine.distributed import init_distributed, teardown

KEYS = ("top1", "many", "medium", "few", "hmean", "gmean", "lowest")


def counting(fn, counts, name):
    def wrapper(*args, **kwargs):
        counts[name] += 1
        return fn(*args, **kwargs)
    return wrapper


configs = [TrainConfig.from_dict(c) for c in json.loads(sys.argv[1])]
info = init_distributed(configs[0].device)
originals = supervised.save_checkpoint, supervised.write_json, supervised._save_model
for i, cfg in enumerate(configs):
    writes = {"checkpoint": 0, "json": 0, "model": 0}
    supervised.save_checkpoint = counting(originals[0], writes, "checkpoint")
    supervised.write_json = counting(originals[1], writes, "json")
    supervised._save_model = counting(originals[2], writes, "model")
    train, test, name = build_datasets(cfg)
    result = supervised.train_supervised(cfg, train, test, dataset_name=name)
    model = result["model"]
    report = {
        "rank": info.rank, "world_size": info.world_size, "writes": writes,
        "metrics": {k: result["metrics"][k] for k in KEYS},
        "params": sum(float(p.detach().double().sum()) for p in model.parameters()),
        "buffers": sum(float(b.double().sum()) for b in model.buffers() if b.is_floating_point()),
    }
    with open(f"{sys.argv[2]}/run{i}_rank{info.rank}.json", "w") as f:
        json.dump(report, f)
teardown()
