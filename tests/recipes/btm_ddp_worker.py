"""Worker of test_btm_distributed.py: ``torchrun --nproc_per_node=2 btm_ddp_worker.py OUT_DIR REPORT_DIR``.

Runs BTM on digits-LT from a fixed small_cnn under DDP (gloo); each rank writes
``REPORT_DIR/rank<r>.json`` = {"world_size", "merged" (float64 sum per merged entry), "report"}.
"""
import json
import sys

import torch

import ltzoo
from ltzoo.engine.distributed import init_distributed, teardown
from ltzoo.recipes.btm import train_btm
from tests.recipes.btm_setup import btm_config, digits_data

info = init_distributed("cpu")
train, test = digits_data()
torch.manual_seed(0)
model = ltzoo.create_model("small_cnn", num_classes=10)
out = train_btm(model, train, test, cfg=btm_config(), output_dir=sys.argv[1], progress=False)
record = {"world_size": info.world_size, "merged": {k: float(v.double().sum()) for k, v in out["merged_state"].items()},
          "report": {k: out["report"][k] for k in ("merged", "posttrained")}}
with open(f"{sys.argv[2]}/rank{info.rank}.json", "w") as f:
    json.dump(record, f)
teardown()
