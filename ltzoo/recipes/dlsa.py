"""DLSA recipe: fit the "dlsa" head on features of a frozen backbone, select on a validation split.

1. Features are extracted once (ltzoo/engine/features.py, cached).
2. A stratified validation split is carved from the TRAINING features; the test set is only reported.
3. Level by level, a flow filter is trained with the "dlsa" loss on the training samples reaching
   it; its threshold passes the ``filter_ratio`` most likely of them; cluster histograms are counted.
4. Each cluster-aided classifier is trained with balanced softmax on every sample reaching its level
   (``aided_on="passed"``: the filtered ones only, as the authors), histogram inputs leave-one-out
   (a sample does not see its own label); the epoch with the best validation score is kept.
5. The baseline is a balanced-softmax linear classifier on the same features and selection. With
   ``plain_on="all"`` (default) it is also DLSA's last-level classifier, so DLSA differs from it only
   on filtered samples; ``plain_on="rest"`` trains that one on the unfiltered rest (the authors).
6. ``prior`` sets the class counts of each balanced softmax: "branch" (the counts of the samples the
   classifier trains on: every branch predicts as if its classes were balanced) or "level" (the
   counts of all samples reaching the level). With "level", a classifier trained on a branch keeps
   log P(branch | y) in its logits, which is the branch's class prior on a balanced test set:
   P(y | x, branch) is proportional to p(x | y) P(branch | y) (the label-space adjustment behind the
   paper's head/tail separation argument, supplement Sec. 1).
"""
from __future__ import annotations

import inspect
import math
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ltzoo.heads.flow import DLSAHead, FlowFilter
from ltzoo.losses.dlsa import DLSALoss
from ltzoo.losses.logit_adjusted import BalancedSoftmaxLoss
from ltzoo.metrics import summarize
from ltzoo.engine.features import (batches, extract_features, fit_classifiers, fit_plain_classifier,
                                  stratified_split, val_score)

__all__ = ["train_dlsa", "fit_dlsa_head", "fit_flow_filter", "draw_negatives", "balanced_softmax_counts"]

PRIORS = ("branch", "level")


def balanced_softmax_counts(branch_labels: torch.Tensor, level_labels: torch.Tensor, num_classes: int,
                            prior: str = "branch") -> torch.Tensor:
    """Class counts for the balanced softmax of a classifier trained on one branch of a level.

    Args:
        branch_labels: Labels of the samples the classifier trains on.
        level_labels: Labels of all samples reaching the level (a superset).
        num_classes: K.
        prior: "branch" (counts of ``branch_labels``) or "level" (counts of ``level_labels``).

    Returns:
        (K,) float counts, an absent class counted as 1.
    """
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    labels = branch_labels if prior == "branch" else level_labels
    return torch.bincount(labels, minlength=num_classes).float().clamp_min(1)


def draw_negatives(labels: torch.Tensor, anchors: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """For each anchor position, a uniformly drawn position of a sample of another class.

    Args:
        labels: (N,) labels of the whole set (at least two classes present).
        anchors: (B,) positions into ``labels``.
        gen: Random generator.

    Returns:
        (B,) positions whose labels differ from the anchors'.
    """
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels)
    start = torch.cumsum(counts, 0) - counts
    ya = labels[anchors]
    others = labels.numel() - counts[ya]
    if bool((others == 0).any()):
        raise ValueError("labels must hold at least two classes to draw negatives")
    r = (torch.rand(anchors.numel(), generator=gen).to(labels.device) * others).long().clamp_max(others - 1)
    return order[r + counts[ya] * (r >= start[ya])]  # skip the anchor class's block in sorted order


def fit_flow_filter(filt: FlowFilter, x: torch.Tensor, y: torch.Tensor, num_classes: int, *, epochs: int = 30,
                    lr: float = 1e-3, batch_size: int = 128, lambda_bal: float = 1.0, lambda_pure: float = 0.02,
                    momentum: float = 0.7, gen: torch.Generator | None = None) -> list[float]:
    """Train a flow filter with the "dlsa" loss (MLE + balancedness + purity) and Adam.

    Returns:
        The mean loss of every epoch (the filter is left in eval mode).
    """
    gen = gen if gen is not None else torch.Generator().manual_seed(0)
    counts = torch.bincount(y, minlength=num_classes).float().clamp_min(1)  # an absent class's weight is unused
    crit = DLSALoss(counts, filt.num_components, lambda_bal, lambda_pure, momentum).to(x.device)
    opt = torch.optim.Adam(filt.parameters(), lr=lr)
    two_classes = int((torch.bincount(y) > 0).sum()) >= 2
    history = []
    filt.train()
    for _ in range(epochs):
        total, seen = 0.0, 0
        for idx in batches(y.numel(), batch_size, gen, min_size=2):  # BatchNorm needs 2 samples
            neg = draw_negatives(y, idx, gen) if two_classes else None
            out = filt(x[idx] if neg is None else torch.cat([x[idx], x[neg]]))  # one BatchNorm batch
            anchor = type(out)(*(t[:idx.numel()] for t in out))
            other = None if neg is None else type(out)(*(t[idx.numel():] for t in out))
            loss = crit(anchor, y[idx], other)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(filt.parameters(), 10.0)
            opt.step()
            total, seen = total + float(loss.detach()) * idx.numel(), seen + idx.numel()
        history.append(total / max(seen, 1))
    filt.eval()
    return history


@torch.no_grad()
def _set_level(level, x: torch.Tensor, y: torch.Tensor, ratio: float, k: int, loo: bool):
    """Set a level's threshold and cluster histograms; return its pass mask and the histogram each
    training sample sees (leave-one-out: without the sample's own label)."""
    ll, c = level.clusters(x)
    top = max(1, math.ceil(ratio * ll.numel()))
    level.threshold.fill_(torch.topk(ll, top).values[-1])  # the ratio most likely pass (ties may add a few)
    counts = torch.zeros_like(level.cluster_hist).index_put_((c, y), torch.ones_like(ll), accumulate=True)
    level.cluster_hist.copy_(counts / counts.sum(1, keepdim=True).clamp_min(1))
    passed = ll >= level.threshold
    own = counts[c] - (nn.functional.one_hot(y, k).to(counts.dtype) if loo else 0)
    return passed, own / own.sum(1, keepdim=True).clamp_min(1)


def fit_dlsa_head(head: DLSAHead, x: torch.Tensor, y: torch.Tensor, *, val=None, plain: nn.Module | None = None,
                  aided_on: str = "reaching", plain_on: str = "all", prior: str = "branch", loo_hist: bool = True,
                  flow_epochs: int = 30, epochs: int = 50, flow_lr: float = 1e-3, lr: float = 1e-2,
                  batch_size: int = 128, lambda_bal: float = 1.0, lambda_pure: float = 0.02, momentum: float = 0.7,
                  seed: int = 0) -> dict[str, Any]:
    """Fit every level of ``head`` on training features, then its classifiers (epoch chosen on ``val``).

    Args:
        head: A fresh :class:`DLSAHead` on the same device as ``x``.
        x: (N, D) training features; y: (N,) labels.
        val: Optional (features, labels) pair for the epoch choice (else the last epoch is kept).
        plain: With ``plain_on="all"``, a trained "fc" head to copy as the last-level classifier
            (None: one is trained by :func:`fit_plain_classifier` with the same schedule and seed).
        aided_on: Training samples of a level's cluster-aided classifier: "reaching" (all that reach
            the level) or "passed" (only those passing its threshold, as the authors).
        plain_on: "all" (last-level classifier trained on all samples) or "rest" (on the rest only,
            as the authors).
        prior: Balanced-softmax class counts: "branch" or "level" (module doc, step 6).
        loo_hist: Leave-one-out cluster histograms for the training samples.
        flow_epochs, flow_lr: Adam schedule of each flow filter; epochs, lr: of the classifiers.
        batch_size: Batch size of both.
        lambda_bal, lambda_pure, momentum: "dlsa" loss settings.
        seed: Seed of the batch order and negative draws.

    Returns:
        {"flow_loss": per level, "train_routing": fraction per level (+ last), "selected_epoch",
        "val_key", "val_mean_recall", "val_curve"}.
    """
    if not isinstance(head, DLSAHead):
        raise TypeError(f"head must be a DLSAHead, got {type(head).__name__}")
    for name, v, ok in (("plain_on", plain_on, ("all", "rest")), ("aided_on", aided_on, ("reaching", "passed")),
                        ("prior", prior, PRIORS)):
        if v not in ok:
            raise ValueError(f"{name} must be one of {ok}, got {v!r}")
    for name, v in (("flow_epochs", flow_epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    k, gen = head.num_classes, torch.Generator().manual_seed(seed)
    sched = dict(epochs=epochs, lr=lr, batch_size=batch_size)
    open_ = torch.ones_like(y, dtype=torch.bool)
    parts, flow_loss, routing = [], [], []
    for level in head.levels:
        xs, ys = x[open_], y[open_]
        flow_loss.append(fit_flow_filter(level.filter, xs, ys, k, epochs=flow_epochs, lr=flow_lr,
                                         batch_size=batch_size, lambda_bal=lambda_bal, lambda_pure=lambda_pure,
                                         momentum=momentum, gen=gen))
        passed, hist = _set_level(level, xs, ys, head.filter_ratio, k, loo_hist)
        sel = passed if aided_on == "passed" else torch.ones_like(passed)
        xp, yp, hist = xs[sel], ys[sel], hist[sel]
        crit = BalancedSoftmaxLoss(balanced_softmax_counts(yp, ys, k, prior)).to(x.device)
        parts.append((lambda i, lv=level, xp=xp, hp=hist: lv.classifier(xp[i], hp[i]), yp, crit))
        routing.append(int(passed.sum()) / y.numel())
        open_[open_.clone()] = ~passed
    routing.append(int(open_.sum()) / y.numel())
    modules = [lv.classifier for lv in head.levels]
    if plain_on == "all":
        if plain is None:
            plain, _ = fit_plain_classifier(x, y, k, val=val, seed=seed, **sched)
        head.classifier.load_state_dict(plain.fc.state_dict() if hasattr(plain, "fc") else plain.state_dict())
    elif plain is not None:
        raise ValueError("plain is only used with plain_on='all'")
    elif bool(open_.any()):
        xr, yr = x[open_], y[open_]
        crit = BalancedSoftmaxLoss(balanced_softmax_counts(yr, ys, k, prior)).to(x.device)  # ys: reached the last
        parts.append((lambda i: head.classifier(xr[i]), yr, crit))
        modules.append(head.classifier)
    head.eval()
    info = fit_classifiers(parts, modules, gen=gen, score=val_score(head, val, k), **sched)
    return {"flow_loss": flow_loss, "train_routing": routing, **info}


HEAD_ARGS = set(inspect.signature(DLSAHead).parameters) - {"in_features", "num_classes"}


def train_dlsa(backbone_model: nn.Module, train_set, test_set=None, val_fraction: float = 0.2, seed: int = 0,
               epochs: int = 50, flow_epochs: int = 30, head_kwargs: dict | None = None,
               candidates: Sequence[dict] | None = None, batch_size: int = 128, device=None,
               cache_dir: str | os.PathLike | None = None, split_seed: int | None = None, progress: bool = True,
               groups: dict[str, Any] | None = None, **fit_kwargs: Any) -> tuple[DLSAHead, dict[str, Any]]:
    """Train a DLSA head on a frozen backbone's features and compare it with the plain classifier.

    Args:
        backbone_model: Trained model (timm-style ``forward_features``/``forward_head``, or a module
            returning pooled features); it is not modified.
        train_set, test_set: Datasets (or loaders) with evaluation transforms.
        val_fraction: Share of each training class held out for model selection.
        seed: Seed of the head, the training order and (unless ``split_seed``) the split.
        epochs, flow_epochs: Classifier and flow-filter epochs.
        head_kwargs: :class:`DLSAHead` keyword arguments (depth, filter_ratio, num_components, ...).
        candidates: Optional list of overrides of head_kwargs and of :func:`fit_dlsa_head` options
            (e.g. ``{"plain_on": "rest"}``); the best validation score (class-balanced
            cross-entropy, :func:`ltzoo.engine.features.val_score`) wins.
        batch_size: Batch size of training and extraction.
        device: Where the head trains; None -> the backbone's device.
        cache_dir: Optional folder for the feature caches ("train.safetensors", "test.safetensors").
        split_seed: Seed of the validation split (None -> ``seed``); :func:`stratified_split` with
            it reproduces the split, e.g. to train the backbone without the validation samples.
        progress: Show tqdm bars while extracting.
        groups: Keyword arguments of :func:`ltzoo.metrics.summarize` that set the many / medium / few
            groups of the test report (many_threshold, few_threshold or ranges; default 100 / 20).
        **fit_kwargs: :func:`fit_dlsa_head` options (flow_lr, lr, lambda_bal, lambda_pure, momentum, ...).

    Returns:
        The fitted head (eval mode) and a report: "val" (mean recalls), "candidates", "selected",
        "train_class_counts", "train_routing" and, with a test set, the "dlsa" and "plain"
        summaries (:func:`ltzoo.metrics.summarize`) and "test_routing".
    """
    if device is None:
        device = next(iter(backbone_model.parameters()), torch.empty(0)).device
    cache = (lambda name: None if cache_dir is None else Path(cache_dir) / f"{name}.safetensors")  # noqa: E731
    x, y = extract_features(backbone_model, train_set, batch_size, device, cache("train"), progress)
    k = int(getattr(train_set, "num_classes", 0) or getattr(backbone_model, "num_classes", 0) or int(y.max()) + 1)
    counts = torch.bincount(y, minlength=k).tolist()
    split = stratified_split(y, val_fraction, seed if split_seed is None else split_seed)
    tr, va = torch.from_numpy(split[0]), torch.from_numpy(split[1])
    if va.numel() == 0:
        raise ValueError(f"val_fraction={val_fraction} leaves no validation sample (every class has one sample)")
    x, y = x.to(device), y.to(device)
    val = (x[va], y[va])
    plain, pinfo = fit_plain_classifier(x[tr], y[tr], k, val=val, epochs=epochs, lr=fit_kwargs.get("lr", 1e-2),
                                        batch_size=batch_size, seed=seed)
    best, tried = None, []
    for cand in candidates or [{}]:
        kw = {**(head_kwargs or {}), **cand}
        head = DLSAHead(x.shape[1], k, **{"seed": seed, **{n: v for n, v in kw.items() if n in HEAD_ARGS}}).to(device)
        opts = {**fit_kwargs, **{n: v for n, v in kw.items() if n not in HEAD_ARGS}}
        if opts.get("plain_on", "all") == "all":
            opts["plain"] = plain
        info = fit_dlsa_head(head, x[tr], y[tr], val=val, flow_epochs=flow_epochs, epochs=epochs,
                             batch_size=batch_size, seed=seed, **opts)
        tried.append({"candidate": kw, "val_key": info["val_key"], "val_mean_recall": info["val_mean_recall"]})
        if best is None or info["val_key"] > best[1]["val_key"]:  # validation only, never the test set
            best = (head, info, kw)
    head, info, kw = best
    report: dict[str, Any] = {
        "train_class_counts": counts, "num_train": int(tr.numel()), "num_val": int(va.numel()), "seed": seed,
        "val": {"dlsa": info["val_mean_recall"], "plain": pinfo["val_mean_recall"]}, "candidates": tried,
        "selected": {"candidate": kw, "dlsa_epoch": info["selected_epoch"], "plain_epoch": pinfo["selected_epoch"]},
        "train_routing": info["train_routing"],
    }
    if test_set is not None:
        xt, yt = extract_features(backbone_model, test_set, batch_size, device, cache("test"), progress)
        with torch.no_grad():
            xt = xt.to(device)
            level = head.route(xt)[0].cpu()
            for who, clf in (("dlsa", head), ("plain", plain)):
                report[who] = summarize(yt, clf(xt).argmax(1).cpu(), counts, **(groups or {}))
        report["test_routing"] = (torch.bincount(level, minlength=head.depth + 1).float() / level.numel()).tolist()
    return head, report
