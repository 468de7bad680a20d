"""BTM's "FC" stage (BTM paper Sec. 3.3): before balanced fine-tuning, a stage-1 model that
already handles imbalance gets a classifier that does not, by training only its classifier
with plain cross-entropy on ALL the (imbalanced) training data.

When it runs (``fc_stage``): "on", "off", or "auto" = when the stage-1 run's loss is not plain
cross-entropy, its head is not "fc", its sampler is not "random", or it ended with a decoupled
classifier stage (cRT), any of which gives a classifier that handles the imbalance.

Settings (the paper's Sec. 4.1 for PaCo / GPaCo / OTmix / PASCL: "re-train the classifier for
10 epochs with all training data", "the same training strategy for the first two steps" (FC
and BTM) "and the training hyperparameters same as those of MiSLAS"; the authors' public code
has no FC-stage script):

* 10 epochs, the "random" (instance-uniform) sampler over all the training data, plain "ce";
* the BTM fine-tuning's optimisation: SGD momentum 0.9, weight decay 5e-4, batch 256, cosine
  from the fine-tuning learning rate (5e-3 on CIFAR-100-LT), the stage-1 run's augmentation and
  mixer (the BTM stage "follows the data augmentation strategy of the 'Pre-train' stage");
* the classifier is KEPT and fine-tuned (the paper: "fine-tune only the classifier") when it is
  a linear layer ("fc", "ms": the FC weights carry over into an "fc" head); a head without one
  ("etf", "wetf", "ms_wetf", ...) has no FC to fine-tune, so a fresh "fc" head is trained
  (our choice; ``fc_reinit=True`` forces a fresh head for any model);
* the frozen backbone keeps its BatchNorm statistics (eval mode: the paper freezes all but the
  classifier and says nothing of BatchNorm).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["FC_STAGE_MODES", "fc_stage_reasons", "to_fc_head", "run_fc_stage"]

FC_STAGE_MODES = ("auto", "on", "off")


def fc_stage_reasons(recipe: Mapping[str, Any] | None, model: nn.Module) -> list[str]:
    """Why the stage-1 classifier handles imbalance (empty: it does not, "auto" skips the FC stage).

    Args:
        recipe: The stage-1 run's config (``TrainConfig.to_dict()``: ``loss``, ``head``,
            ``sampler``, ``crt_epochs``), or None when unknown: then only the model's head is
            checked and its loss is taken to be the head's default.
        model: The stage-1 model (its ``head_name`` when the recipe does not name the head).

    Returns:
        One sentence per reason.
    """
    from ltzoo.registry import HEADS

    recipe = dict(recipe or {})
    head = recipe.get("head") or getattr(model, "head_name", "fc")
    loss = recipe.get("loss")
    if loss is None:
        try:
            loss = getattr(HEADS.get(head), "default_loss", "ce")
        except ValueError:
            loss = "ce"
    reasons = []
    if loss != "ce":
        reasons.append(f"stage-1 loss is {loss!r}, not plain cross-entropy")
    if head != "fc":
        reasons.append(f"stage-1 head is {head!r}, not 'fc'")
    sampler = recipe.get("sampler", "random")
    if sampler != "random":
        reasons.append(f"stage-1 sampler is {sampler!r}, not 'random'")
    if int(recipe.get("crt_epochs") or 0) > 0:
        reasons.append(f"stage 1 ended with classifier retraining (cRT, {recipe.get('crt_sampler', 'class_aware')!r} sampler)")
    return reasons


def to_fc_head(model: nn.Module, reinit: bool, seed: int) -> bool:
    """Give ``model`` an "fc" head: the current FC weights when the head has a linear ``fc`` layer
    (and ``reinit`` is False), else a freshly initialised one (seeded).

    Returns:
        True when the weights were kept, False when the head was re-initialised.
    """
    k = int(model.num_classes)
    fc = getattr(model.get_classifier(), "fc", None)
    keep = isinstance(fc, nn.Linear) and not reinit
    state = {k_: v.detach().clone() for k_, v in fc.state_dict().items()} if keep else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.reset_classifier(k, head="fc", **({"bias": fc.bias is not None} if keep else {}))
    if keep:
        model.get_classifier().fc.load_state_dict(state)
    return keep


def run_fc_stage(model: nn.Module, train_set: Any, class_counts: Any, *, epochs: int, lr: float, batch_size: int,
                 momentum: float, weight_decay: float, mixer: str | None, mixer_args: dict[str, Any] | None,
                 reinit: bool, cache_features: bool, seed: int, progress: bool = False) -> dict[str, Any]:
    """Train only the classifier with plain CE on all of ``train_set`` (instance-uniform); in place.

    Args:
        model: The stage-1 model (its head becomes an "fc" head).
        train_set: The whole long-tailed training set (with augmentation unless ``cache_features``).
        class_counts: Training counts.
        epochs, lr, batch_size, momentum, weight_decay: SGD with a per-iteration cosine.
        mixer, mixer_args: The stage-1 run's mixer (image path only).
        reinit: Train a fresh "fc" head even when the current head has FC weights.
        cache_features: Train on cached un-augmented features instead (faster; no mixer).
        seed: Seeds the sampler, mixer and any new head.
        progress: tqdm bar.

    Returns:
        What ran: ``{"ran": True, "epochs", "lr", "batch_size", "sampler": "random", "loss": "ce",
        "kept_classifier", "from_head", "mixer", "cache_features"}``.
    """
    from ltzoo.recipes.crt import retrain_classifier

    from_head = getattr(model, "head_name", type(model.get_classifier()).__name__)
    kept = to_fc_head(model, reinit, seed)
    mixer = None if cache_features else mixer
    retrain_classifier(model, train_set, sampler="random", epochs=epochs, lr=lr, batch_size=batch_size,
                       momentum=momentum, weight_decay=weight_decay, loss="ce", class_counts=class_counts,
                       reinit=False, cache_features=cache_features, mixer=mixer, mixer_args=mixer_args, seed=seed,
                       progress=progress)
    return {"ran": True, "epochs": epochs, "lr": lr, "batch_size": batch_size, "sampler": "random", "loss": "ce",
            "kept_classifier": kept, "from_head": from_head, "mixer": mixer, "cache_features": cache_features}
