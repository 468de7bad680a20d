"""The recipes a user runs, one file each, read top to bottom as the paper's algorithm.

* ``supervised``: :func:`train_supervised`, any backbone / head / loss / sampler / mixer
  (CE, LA, BMLS + MS / WETF, ETF + DR, ...), with an optional cRT stage.
* ``crt``: :func:`retrain_classifier`, decoupled classifier retraining (Kang et al., 2020).
* ``btm``: :func:`train_btm`, balanced training and merging (Algorithm 1), with its "FC" stage
  (``btm_fc_stage``), MiSLAS-style post-training (``posttrain``) and config (``btm_config``).
* ``fixmatch``: :func:`train_fixmatch` with the LA / UDAL / BEM plug-ins; BEM's step in ``bem``.
* ``dlsa``: :func:`train_dlsa`, the DLSA head on frozen features; ``dlsa_run`` fits it on a run.
* ``merge_runs``: average compatible trained runs into one saved model.
* ``demo``: ``ltzoo demo``'s three recipes on digits-LT.

The plumbing lives in :mod:`ltzoo.engine`.
"""
from ltzoo.recipes.btm import train_btm
from ltzoo.recipes.crt import retrain_classifier, without_augmentation
from ltzoo.recipes.dlsa import train_dlsa
from ltzoo.recipes.fixmatch import train_fixmatch
from ltzoo.recipes.supervised import train_supervised

__all__ = ["train_supervised", "retrain_classifier", "without_augmentation", "train_btm", "train_fixmatch",
           "train_dlsa"]
