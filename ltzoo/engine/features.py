"""Features of a frozen backbone: extraction (eval mode, no_grad, optional disk cache), a stratified
train/validation split, and classifiers fitted on the features with the epoch chosen on validation.

The cache is a safetensors file at a path the caller chooses, keyed by the model's weights and the
data (:mod:`ltzoo.cache_keys`; a file written for another model is refused, never reused); it is
written atomically (temporary file + rename), so an interrupted run never leaves a truncated cache. Pass datasets with their
evaluation transform (no random augmentation): the features are computed once.
"""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ltzoo.validation import as_number

__all__ = ["extract_features", "pooled_features", "stratified_split", "batches", "fit_classifiers", "val_score",
           "fit_plain_classifier"]


def pooled_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, D) pooled features: ``forward_head(forward_features(x), pre_logits=True)`` for timm-style
    models (ltzoo's LTModel), else the model's own 2-D output."""
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        out = model.forward_head(model.forward_features(images), pre_logits=True)
    else:
        out = model(images)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError(f"model must give (B, D) pooled features, got {getattr(out, 'shape', type(out).__name__)}")
    return out


def _load_cache(path: Path, key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The cached (features, labels) when ``path`` was written for ``key``.

    Raises:
        ValueError: If it was written for another model, data or setting (or by an older ltzoo
            without a key): it is never reused, and never silently replaced.
    """
    from ltzoo.cache_keys import key_matches
    from ltzoo.files import read_safetensors, read_safetensors_metadata

    found = read_safetensors_metadata(path).get("ltzoo_cache_key")
    if not key_matches({"ltzoo_cache_key": found} if found else None, key):
        raise ValueError(f"cache_path {str(path)!r} holds features of another model, data or transform (cache key "
                         f"{found or 'none'}, this extraction's {key}); delete it or choose a new cache path")
    tensors = read_safetensors(path)
    if set(tensors) != {"features", "labels"}:
        raise ValueError(f"cache_path {str(path)!r} is not a feature cache (keys {sorted(tensors)})")
    return tensors["features"], tensors["labels"]


def _save_cache(path: Path, feats: torch.Tensor, labels: torch.Tensor, key: str) -> None:
    from ltzoo.files import write_safetensors

    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors({"features": feats, "labels": labels}, path, metadata={"ltzoo_cache_key": key})


def _features_key(model: nn.Module, data: Any, expected: int | None) -> str:
    """:func:`ltzoo.cache_keys.cache_key` of the model's weights and the data (size, labels, transform)."""
    from ltzoo.cache_keys import cache_key

    dataset = data.dataset if isinstance(data, DataLoader) else data
    targets = getattr(dataset, "targets", None)
    return cache_key(model, n=expected, targets=None if targets is None else np.asarray(targets).tolist(),
                     transform=repr(getattr(dataset, "transform", None)), dataset=type(dataset).__name__)


def extract_features(model: nn.Module, data: Dataset | DataLoader, batch_size: int = 256,
                     device: torch.device | str | None = None, cache_path: str | os.PathLike | None = None,
                     progress: bool = True, num_workers: int = 0, stale_cache: str = "raise"
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features and labels of every sample, in data order.

    Args:
        model: The frozen backbone model (run in eval mode under no_grad; its mode is restored).
        data: A dataset of (image, label, ...) items or a loader yielding such batches.
        batch_size: Batch size when ``data`` is a dataset.
        device: Where images go; None -> the device of the model's first parameter.
        cache_path: Optional safetensors file, keyed by :func:`ltzoo.cache_keys.cache_key` of the model's
            weights and the data (size, labels, transform): written after extraction, loaded when its
            key matches, refused (ValueError naming it) when it does not: another model's features
            are never reused.
        progress: Show a tqdm bar.
        num_workers: Loader workers when ``data`` is a dataset.
        stale_cache: What to do with a ``cache_path`` written for another key: "raise" (ValueError
            naming it) or "recompute" (extract again and replace it; for a cache folder the caller owns).

    Returns:
        features (N, D) float32 and labels (N,) int64, both on the CPU.
    """
    from tqdm import tqdm

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(data, DataLoader):
        loader, expected = data, (len(data.dataset) if hasattr(data.dataset, "__len__") else None)
    elif isinstance(data, Dataset) and hasattr(data, "__len__"):
        loader, expected = DataLoader(data, batch_size, shuffle=False, num_workers=num_workers), len(data)
    else:
        raise TypeError(f"data must be a sized Dataset or a DataLoader, got {type(data).__name__}")
    if stale_cache not in ("raise", "recompute"):
        raise ValueError(f"stale_cache must be 'raise' or 'recompute', got {stale_cache!r}")
    path = None if cache_path is None else Path(cache_path)
    key = None if path is None else _features_key(model, data, expected)
    if path is not None and path.exists():
        try:
            return _load_cache(path, key)
        except ValueError:
            if stale_cache == "raise":
                raise
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in tqdm(loader, desc="features", disable=not progress, leave=False):
                if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                    raise TypeError(f"data must yield (images, labels, ...) items, got {type(batch).__name__}")
                feats.append(pooled_features(model, batch[0].to(device)).float().cpu())
                labels.append(torch.as_tensor(batch[1]).long().cpu())
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("data yielded no samples")
    out = torch.cat(feats), torch.cat(labels)
    if path is not None:
        _save_cache(path, *out, key)
    return out


def stratified_split(labels: Any, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split sample positions into train / validation parts, per class.

    Each class gives round(val_fraction * n_c) samples to validation, at least one when
    n_c >= 2 and always leaving at least one for training.

    Args:
        labels: (N,) integer labels.
        val_fraction: Validation share in (0, 1).
        seed: Seed of the shuffle.

    Returns:
        (train positions, validation positions), each sorted, int64.
    """
    val_fraction = as_number(val_fraction)  # numpy / 0-d tensor scalars are numbers too
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    if y.size == 0 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be a non-empty integer sequence, got dtype {y.dtype}, size {y.size}")
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = min(max(int(round(val_fraction * idx.size)), 1 if idx.size >= 2 else 0), idx.size - 1)
        val.append(idx[:k])
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    return np.setdiff1d(np.arange(y.size), val_idx).astype(np.int64), val_idx


def batches(n: int, batch_size: int, gen: torch.Generator, min_size: int = 1) -> Iterator[torch.Tensor]:
    """Shuffled index batches over range(n); batches smaller than ``min_size`` are skipped."""
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        if perm[i:i + batch_size].numel() >= min_size:
            yield perm[i:i + batch_size]


def val_score(model: Callable, val: tuple[torch.Tensor, torch.Tensor] | None, k: int) -> Callable:
    """A scorer of ``model`` on ``val`` = (features, labels) for :func:`fit_classifiers`.

    The key is minus the class-balanced cross-entropy (mean over classes of the class's mean loss):
    smooth, where the recall of a small validation set saturates and would pick an arbitrary epoch.

    Args:
        model: Maps (N, D) features to (N, K) logits.
        val: Validation features and labels, or None (the scorer then returns None).
        k: Number of classes K.

    Returns:
        A callable giving ((key,), mean recall); a larger key is better.
    """
    from ltzoo.metrics import per_class_recall

    def score() -> tuple[tuple[float], float] | None:
        if val is None:
            return None
        with torch.no_grad():
            logits = model(val[0])
            per_sample = nn.functional.cross_entropy(logits, val[1], reduction="none")
            per_class = torch.zeros(k, device=logits.device).index_add_(0, val[1], per_sample)
            n = torch.bincount(val[1], minlength=k)
            balanced = float((per_class[n > 0] / n[n > 0]).mean())
        return (-balanced,), float(np.nanmean(per_class_recall(val[1].cpu(), logits.argmax(1).cpu(), k)))
    return score


def fit_classifiers(parts: Sequence[tuple[Callable, torch.Tensor, nn.Module]], modules: Sequence[nn.Module], *,
                    epochs: int, lr: float, batch_size: int, gen: torch.Generator,
                    score: Callable[[], Any], weight_decay: float = 1e-4) -> dict[str, Any]:
    """Train classifiers on features with Adam and keep the epoch with the best validation score.

    Args:
        parts: (forward(index batch) -> logits, labels, loss) triples, trained one after another each epoch.
        modules: The modules whose parameters are trained and whose best state is restored.
        epochs, lr, batch_size, weight_decay: The schedule.
        gen: Generator of the batch order.
        score: Called after each epoch, gives (key, mean recall) (see :func:`val_score`); the largest
            key wins; None (no validation) keeps the last epoch.

    Returns:
        {"selected_epoch", "val_key", "val_mean_recall" (both None without validation), "val_curve"}.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    opt = torch.optim.Adam([p for m in modules for p in m.parameters()], lr=lr, weight_decay=weight_decay)
    best: tuple[Any, ...] = ((-math.inf,), epochs, [], None)
    curve = []
    for ep in range(1, epochs + 1):
        for forward, labels, crit in parts:
            for idx in batches(labels.numel(), batch_size, gen):
                loss = crit(forward(idx), labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        s = score()
        curve.append(None if s is None else s[1])
        if s is not None and s[0] > best[0]:
            best = (s[0], ep, [copy.deepcopy(m.state_dict()) for m in modules], s[1])
    for m, state in zip(modules, best[2]):
        m.load_state_dict(state)
    return {"selected_epoch": best[1], "val_mean_recall": best[3], "val_key": list(best[0]) if best[2] else None,
            "val_curve": curve}


def fit_plain_classifier(x: torch.Tensor, y: torch.Tensor, num_classes: int, *, val=None, epochs: int = 50,
                         lr: float = 1e-2, batch_size: int = 128, seed: int = 0):
    """An "fc" head trained on features with balanced softmax, the epoch chosen on ``val``.

    Args:
        x: (N, D) features; y: (N,) labels.
        num_classes: K (a class absent from y counts as 1 in the balanced-softmax prior).
        val: Optional (features, labels) validation pair.
        epochs, lr, batch_size: Adam schedule.
        seed: Seed of the initialisation and batch order (same seed, same classifier).

    Returns:
        The head (eval mode) and :func:`fit_classifiers`' info.
    """
    from ltzoo.heads.linear import LinearHead
    from ltzoo.losses.logit_adjusted import BalancedSoftmaxLoss

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = LinearHead(x.shape[1], num_classes).to(x.device)
    crit = BalancedSoftmaxLoss(torch.bincount(y, minlength=num_classes).float().clamp_min(1)).to(x.device)
    info = fit_classifiers([(lambda i: head(x[i]), y, crit)], [head], epochs=epochs, lr=lr, batch_size=batch_size,
                           gen=torch.Generator().manual_seed(seed), score=val_score(head, val, num_classes))
    return head.eval(), info
