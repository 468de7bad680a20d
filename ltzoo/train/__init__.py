"""Training recipes: supervised long-tailed, semi-supervised (FixMatch + LA / UDAL / BEM), BTM.

Supervised recipe and the pieces the other recipes reuse::

    from ltzoo.train import TrainConfig, train_supervised
    cfg = TrainConfig(model="resnet32", head="ms", loss="mixed_singleton", sampler="bmls",
                      mixer="mixup", epochs=200, output_dir="runs/bmls_ms")
    result = train_supervised(cfg, train_set, test_set)      # resume=True continues a run
    result["metrics"]["top1"], result["metrics"]["few"]

Modules: ``config`` (TrainConfig), ``schedule`` (warm-up + cosine / step LambdaLR),
``checkpoint`` (atomic save, weights_only load, RNG states), ``distributed`` (torchrun set-up,
DDP), ``builders`` (parts by name), ``objective`` (the mixed-loss bookkeeping), ``epoch`` (one
training epoch), ``evaluation`` (metrics, JSON log), ``parts`` (a run's parts and checkpoint
state), ``supervised`` (the recipe), ``decoupled`` (classifier retraining, cRT / BTM post-train),
``data`` (datasets by config), ``demo`` (``ltzoo demo``), ``commands`` / ``eval_checkpoint``
(``ltzoo train`` / ``train-ssl`` / ``ltzoo eval``).

Semi-supervised: ``fixmatch`` (``train_fixmatch`` with plugin "none", "la", "udal" or "bem"),
``ssl_config`` (SSLConfig), ``ssl_data`` (LTSSL splits, weak / strong views), ``bem_step``.
BTM: ``btm`` (``train_btm``), ``btm_commands`` (``ltzoo merge`` / ``ltzoo btm``).
DLSA: ``dlsa`` (``train_dlsa``), ``features`` (cached feature extraction).
"""
from ltzoo.train.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from ltzoo.train.config import TrainConfig, load_config
from ltzoo.train.decoupled import retrain_classifier, without_augmentation
from ltzoo.train.features import extract_features
from ltzoo.train.objective import TrainForward, compute_loss, mixed_loss
from ltzoo.train.schedule import build_scheduler, lr_multiplier
from ltzoo.train.fixmatch import train_fixmatch
from ltzoo.train.ssl_config import SSLConfig
from ltzoo.train.ssl_data import make_ltssl_digits, make_ltssl_split
from ltzoo.train.supervised import train_supervised

__all__ = [
    "TrainConfig", "SSLConfig", "load_config", "train_supervised", "train_fixmatch", "make_ltssl_split",
    "make_ltssl_digits", "retrain_classifier", "extract_features",
    "without_augmentation", "compute_loss", "mixed_loss", "TrainForward", "build_scheduler", "lr_multiplier",
    "save_checkpoint", "load_checkpoint", "capture_rng_state", "restore_rng_state",
]
