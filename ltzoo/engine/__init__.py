"""What the recipes share: configs, builders, the epoch loop and objective, schedules, checkpoints,
distributed helpers, evaluation, feature extraction and datasets by config.

Modules: ``config`` (:class:`TrainConfig`), ``ssl_config`` (:class:`SSLConfig`), ``builders``
(parts by registry name), ``parts`` (a run's parts and their checkpoint state), ``objective``
(plain / mixed-label / feature-space losses), ``epoch`` (one training epoch), ``schedule``
(warm-up + cosine / step), ``checkpoint`` (atomic save, weights_only load, RNG states),
``distributed`` (torchrun set-up, DDP), ``evaluation`` (metrics of a run, JSON log),
``eval_checkpoint`` (evaluate a saved run or model), ``features`` (cached feature extraction),
``data`` (datasets from a config), ``ssl_data`` (labeled / unlabeled splits and views),
``norm_stats``, ``even_batches``.

Imports run one way: the engine uses components, models and the Hub layer, never a recipe.
"""
from ltzoo.engine.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from ltzoo.engine.config import TrainConfig, load_config
from ltzoo.engine.features import extract_features
from ltzoo.engine.objective import TrainForward, compute_loss, mixed_loss
from ltzoo.engine.schedule import build_scheduler, lr_multiplier
from ltzoo.engine.ssl_config import SSLConfig
from ltzoo.engine.ssl_data import make_ltssl_digits, make_ltssl_split

__all__ = [
    "TrainConfig", "SSLConfig", "load_config", "make_ltssl_split", "make_ltssl_digits", "extract_features",
    "compute_loss", "mixed_loss", "TrainForward", "build_scheduler", "lr_multiplier",
    "save_checkpoint", "load_checkpoint", "capture_rng_state", "restore_rng_state",
]
