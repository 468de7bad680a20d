"""DLSA recipe: fit the "dlsa" head on features of a frozen backbone, select on a validation split.

1. Features are extracted once (ltzoo/engine/features.py, cached).
2. A stratified validation split is carved from the TRAINING features; the test set is only reported.
3. Level by level, a flow filter is trained with the "dlsa" loss on the training samples reaching
   it, as the authors' code (silicx/DLSA, REFERENCE.md "DLSA"): every epoch draws N (anchor,
   negative) pairs (N the samples reaching the level), the anchor's class uniformly over the
   classes present, the negative's uniformly over the other classes, each sample uniformly within
   its class (:func:`draw_pairs`); anchors weighted (n_max / n_c)^2 normalised over classes in
   the MLE term; anchors and negatives pass the flow as two batches; plain SGD (lr 0.2, momentum 0,
   batch 1024, 50 epochs). The epoch kept is the one with the most well-clustered clusters
   (purity >= 0.7 and size >= 10, the authors' filter values) among the VALIDATION samples
   reaching the level (the authors count on the training split; the size bound is scaled by
   n_val / n_train so it means the same share of the data), ties to the earlier epoch. Its
   threshold passes the ``filter_ratio`` most likely training samples; cluster histograms are
   counted; with ``cluster_filter`` only clusters that are well clustered on the training
   samples pass.
4. Each cluster-aided classifier (inputs x and cluster histogram P; "XZP": also the flow latent z) is trained
   with balanced softmax on every sample reaching its level (``aided_on="passed"``: the filtered
   ones only, as the authors), histogram inputs leave-one-out (a sample does not see its own
   label); the epoch with the best validation score is kept.
5. The baseline is a balanced-softmax linear classifier on the same features and selection. The
   regular (last-level) classifier takes x ("X", default) or [x, z] ("XZ"); ``plain_on="all"``
   (default) trains it on all training samples, ``plain_on="rest"`` on the unfiltered rest (the
   authors). With "X" and ``plain_on="all"`` it is a copy of the baseline, so DLSA then differs
   from it only on filtered samples.
6. ``prior`` sets the class counts of each balanced softmax: "branch" (the counts of the samples the
   classifier trains on: every branch predicts as if its classes were balanced) or "level" (the
   counts of all samples reaching the level). With "level", a classifier trained on a branch keeps
   log P(branch | y) in its logits, which is the branch's class prior on a balanced test set:
   P(y | x, branch) is proportional to p(x | y) P(branch | y) (the label-space adjustment behind the
   paper's head/tail separation argument, supplement Sec. 1).
"""
from __future__ import annotations

import copy
import inspect
import math
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ltzoo.engine.features import extract_features, fit_classifiers, fit_plain_classifier, stratified_split, val_score
from ltzoo.heads.flow import DLSAHead, FlowFilter
from ltzoo.losses.dlsa import DLSALoss
from ltzoo.losses.logit_adjusted import BalancedSoftmaxLoss
from ltzoo.metrics import summarize

__all__ = ["train_dlsa", "fit_dlsa_head", "fit_flow_filter", "draw_pairs", "cluster_purity",
           "count_pure_clusters", "balanced_softmax_counts"]

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


def draw_pairs(labels: torch.Tensor, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(anchor, negative) position pairs drawn as the authors' sampler (their ``ContrastiveDataset``).

    For each pair, the anchor's class is drawn uniformly over the classes present in ``labels``,
    the negative's class uniformly over the other present classes, and each position uniformly
    among the samples of its class.

    Args:
        labels: (N,) labels.
        n: Number of pairs.
        gen: Random generator.

    Returns:
        (n,) anchor positions and (n,) negative positions; negatives are None when only one class
        is present (no purity term then).
    """
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.numel() == 0:
        raise ValueError(f"labels must be a non-empty (N,) tensor, got {getattr(labels, 'shape', labels)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    labels = labels.cpu()
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels)
    start = torch.cumsum(counts, 0) - counts
    classes = counts.nonzero().squeeze(1)  # present classes

    def within(cls: torch.Tensor) -> torch.Tensor:
        r = (torch.rand(cls.numel(), generator=gen) * counts[cls]).long().clamp_max(counts[cls] - 1)
        return order[start[cls] + r]

    c = classes.numel()
    a = torch.randint(c, (n,), generator=gen)
    if c < 2:
        return within(classes[a]), None
    b = torch.randint(c - 1, (n,), generator=gen)
    b = b + (b >= a)  # uniform over the other classes
    return within(classes[a]), within(classes[b])


def cluster_purity(clusters: torch.Tensor, labels: torch.Tensor, num_components: int,
                   num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Purity (share of the most frequent class; 0 when empty) and size of every cluster.

    Args:
        clusters: (N,) cluster index of each sample, in [0, num_components).
        labels: (N,) class labels, in [0, num_classes).
        num_components: M.
        num_classes: K.

    Returns:
        purity (M,) float and size (M,) long.
    """
    counts = torch.zeros(num_components, num_classes, dtype=torch.long)
    counts.index_put_((clusters.cpu(), labels.cpu()), torch.ones(clusters.numel(), dtype=torch.long), accumulate=True)
    size = counts.sum(1)
    return counts.max(1).values.float() / size.clamp_min(1).float(), size


def count_pure_clusters(clusters: torch.Tensor, labels: torch.Tensor, num_components: int, num_classes: int,
                        min_purity: float = 0.7, min_size: float = 10) -> tuple[int, int]:
    """Number of well-clustered clusters (purity >= min_purity, size >= min_size) and their samples."""
    purity, size = cluster_purity(clusters, labels, num_components, num_classes)
    ok = (purity >= min_purity) & (size >= min_size)
    return int(ok.sum()), int(size[ok].sum())


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def fit_flow_filter(filt: FlowFilter, x: torch.Tensor, y: torch.Tensor, num_classes: int, *, epochs: int = 50,
                    lr: float = 0.2, batch_size: int = 1024, sgd_momentum: float = 0.0, lambda_lh: float = 2.0,
                    lambda_bal: float = 1.0, lambda_pure: float = 0.02, momentum: float = 0.7, q: float = 2.0,
                    purity: str = "soft_ce", purity_margin: float | None = None, contrast_freeze: bool = True,
                    grad_clip: float | None = None, val: tuple[torch.Tensor, torch.Tensor] | None = None,
                    min_purity: float = 0.7, min_size: float = 10, gen: torch.Generator | None = None
                    ) -> dict[str, Any]:
    """Train a flow filter with the "dlsa" loss as the authors (module doc, step 3) and keep the best epoch.

    Args:
        filt: The flow filter (trained in place).
        x: (N, D) features; y: (N,) labels.
        num_classes: K.
        epochs, lr, batch_size, sgd_momentum: Plain SGD schedule (the authors': 50, 0.2, 1024, 0).
        lambda_lh, lambda_bal, lambda_pure, momentum, q, purity, purity_margin, contrast_freeze:
            :class:`ltzoo.losses.dlsa.DLSALoss` settings (momentum: the posterior momentum).
        grad_clip: Clip the gradient norm to this (None: no clipping, as the authors).
        val: (features, labels) on which the well-clustered clusters are counted after every epoch;
            None counts on the training samples (the authors' choice).
        min_purity, min_size: What counts as well clustered (size scaled by len(val) / N on ``val``).
        gen: Random generator of the pairs.

    Returns:
        {"loss": mean loss per epoch, "pure_clusters": count per epoch, "selected_epoch"}; the filter
        holds the selected epoch's weights, in eval mode. Training stops at a non-finite loss.
    """
    _check_positive_int(epochs, "flow_epochs")
    _check_positive_int(batch_size, "flow_batch_size")
    gen = gen if gen is not None else torch.Generator().manual_seed(0)
    counts = torch.bincount(y, minlength=num_classes).float()
    crit = DLSALoss(counts, filt.num_components, lambda_bal, lambda_pure, momentum, lambda_lh=lambda_lh, q=q,
                    purity=purity, purity_margin=purity_margin, contrast_freeze=contrast_freeze).to(x.device)
    opt = torch.optim.SGD(filt.parameters(), lr=lr, momentum=sgd_momentum)
    xs, ys, size_bound = (x, y, min_size) if val is None else (val[0], val[1], min_size * val[1].numel() / y.numel())
    best: tuple[Any, ...] = ((-1, -1), 0, copy.deepcopy(filt.state_dict()))
    history: dict[str, Any] = {"loss": [], "pure_clusters": []}
    for _ in range(epochs):
        filt.train()
        anchors, negatives = draw_pairs(y, y.numel(), gen)
        total, seen, finite = 0.0, 0, True
        for i in range(0, anchors.numel(), batch_size):
            a = anchors[i:i + batch_size].to(x.device)
            if a.numel() < 2:  # BatchNorm needs 2 samples
                continue
            out = filt(x[a])
            other = None if negatives is None else filt(x[negatives[i:i + batch_size].to(x.device)])
            loss = crit(out, y[a], other)
            if not bool(torch.isfinite(loss)):
                finite = False
                break
            opt.zero_grad()
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(filt.parameters(), grad_clip)
            opt.step()
            total, seen = total + float(loss.detach()) * a.numel(), seen + a.numel()
        if not finite:
            break
        history["loss"].append(total / max(seen, 1))
        with torch.no_grad():
            filt.eval()
            clusters = filt(xs).cluster_logits.argmax(1)
        key = count_pure_clusters(clusters, ys, filt.num_components, num_classes, min_purity, size_bound)
        history["pure_clusters"].append(key[0])
        if key > best[0]:  # the authors: strictly more clusters; here their samples break ties
            best = (key, len(history["loss"]), copy.deepcopy(filt.state_dict()))
    filt.load_state_dict(best[2])
    filt.eval()
    history["selected_epoch"] = best[1]
    return history


@torch.no_grad()
def _set_level(level, x: torch.Tensor, y: torch.Tensor, ratio: float, k: int, loo: bool, cluster_filter: bool,
               min_purity: float, min_size: float):
    """Set a level's threshold, cluster histograms and cluster mask; return its pass mask, the histogram
    each training sample sees (leave-one-out: without the sample's own label) and the latents."""
    ll, c, z = level.encode(x)
    top = max(1, math.ceil(ratio * ll.numel()))
    level.threshold.fill_(torch.topk(ll, top).values[-1])  # the ratio most likely pass (ties may add a few)
    counts = torch.zeros_like(level.cluster_hist).index_put_((c, y), torch.ones_like(ll), accumulate=True)
    level.cluster_hist.copy_(counts / counts.sum(1, keepdim=True).clamp_min(1))
    if cluster_filter:
        purity, size = cluster_purity(c, y, level.cluster_hist.shape[0], k)
        level.cluster_ok.copy_(((purity >= min_purity) & (size >= min_size)).to(level.cluster_ok.device))
    passed = level.passes(ll, c)
    own = counts[c] - (nn.functional.one_hot(y, k).to(counts.dtype) if loo else 0)
    return passed, own / own.sum(1, keepdim=True).clamp_min(1), z


FLOW_OPTIONS = ("lambda_lh", "lambda_bal", "lambda_pure", "momentum", "q", "purity", "purity_margin",
                "contrast_freeze", "grad_clip", "min_purity", "min_size")


def fit_dlsa_head(head: DLSAHead, x: torch.Tensor, y: torch.Tensor, *, val=None, plain: nn.Module | None = None,
                  aided_on: str = "reaching", plain_on: str = "all", prior: str = "branch", loo_hist: bool = True,
                  flow_epochs: int = 50, epochs: int = 50, flow_lr: float = 0.2, flow_batch_size: int = 1024,
                  flow_momentum: float = 0.0, lr: float = 1e-2, batch_size: int = 128, lambda_lh: float = 2.0,
                  lambda_bal: float = 1.0, lambda_pure: float = 0.02, momentum: float = 0.7, q: float = 2.0,
                  purity: str = "soft_ce", purity_margin: float | None = None, contrast_freeze: bool = True,
                  grad_clip: float | None = None, cluster_filter: bool = False, min_purity: float = 0.7,
                  min_size: float = 10, seed: int = 0) -> dict[str, Any]:
    """Fit every level of ``head`` on training features, then its classifiers (epochs chosen on ``val``).

    Args:
        head: A fresh :class:`DLSAHead` on the same device as ``x``.
        x: (N, D) training features; y: (N,) labels.
        val: Optional (features, labels) pair for the flow and classifier epoch choice (else the flow
            epoch is chosen on the training samples, as the authors, and the last classifier epoch kept).
        plain: With ``plain_on="all"`` and ``regular_inputs="X"``, a trained "fc" head to copy as the
            regular classifier (None: one is trained by :func:`fit_plain_classifier`, same schedule and seed).
        aided_on: Training samples of a level's cluster-aided classifier: "reaching" (all that reach
            the level) or "passed" (only those passing it, as the authors).
        plain_on: Training samples of the regular classifier: "all" or "rest" (the unfiltered rest, as
            the authors).
        prior: Balanced-softmax class counts: "branch" or "level" (module doc, step 6).
        loo_hist: Leave-one-out cluster histograms for the training samples.
        flow_epochs, flow_lr, flow_batch_size, flow_momentum: SGD schedule of each flow filter.
        epochs, lr, batch_size: Adam schedule of the classifiers.
        lambda_lh, lambda_bal, lambda_pure, momentum, q, purity, purity_margin, contrast_freeze, grad_clip:
            Flow loss settings (:func:`fit_flow_filter`).
        cluster_filter: Pass only samples of clusters with training purity >= ``min_purity`` and size
            >= ``min_size`` (besides the likelihood threshold).
        min_purity, min_size: Well-clustered bounds (flow epoch choice and ``cluster_filter``).
        seed: Seed of the pairs and batch order.

    Returns:
        {"flow_loss", "flow_pure_clusters", "flow_selected_epoch" (per level), "train_routing"
        (fraction per level, then the rest), "selected_epoch", "val_key", "val_mean_recall", "val_curve"}.
    """
    if not isinstance(head, DLSAHead):
        raise TypeError(f"head must be a DLSAHead, got {type(head).__name__}")
    for name, v, ok in (("plain_on", plain_on, ("all", "rest")), ("aided_on", aided_on, ("reaching", "passed")),
                        ("prior", prior, PRIORS)):
        if v not in ok:
            raise ValueError(f"{name} must be one of {ok}, got {v!r}")
    for name, v in (("flow_epochs", flow_epochs), ("batch_size", batch_size), ("flow_batch_size", flow_batch_size)):
        _check_positive_int(v, name)
    copy_plain = plain_on == "all" and head.regular_inputs == "X"
    if plain is not None and not copy_plain:
        raise ValueError("plain is only used with plain_on='all' and regular_inputs='X'")
    k, gen = head.num_classes, torch.Generator().manual_seed(seed)
    sched = dict(epochs=epochs, lr=lr, batch_size=batch_size)
    flow_kw = dict(epochs=flow_epochs, lr=flow_lr, batch_size=flow_batch_size, sgd_momentum=flow_momentum,
                   lambda_lh=lambda_lh, lambda_bal=lambda_bal, lambda_pure=lambda_pure, momentum=momentum, q=q,
                   purity=purity, purity_margin=purity_margin, contrast_freeze=contrast_freeze, grad_clip=grad_clip,
                   min_purity=min_purity, min_size=min_size)
    open_ = torch.ones_like(y, dtype=torch.bool)
    val_open = None if val is None else torch.ones_like(val[1], dtype=torch.bool)
    parts, flow_info, routing = [], [], []
    for level in head.levels:
        xs, ys = x[open_], y[open_]
        level_val = None if val is None or not bool(val_open.any()) else (val[0][val_open], val[1][val_open])
        flow_info.append(fit_flow_filter(level.filter, xs, ys, k, val=level_val, gen=gen, **flow_kw))
        passed, hist, z = _set_level(level, xs, ys, head.filter_ratio, k, loo_hist, cluster_filter, min_purity,
                                     min_size)
        sel = passed if aided_on == "passed" else torch.ones_like(passed)
        xp, yp, hp, zp = xs[sel], ys[sel], hist[sel], z[sel]
        crit = BalancedSoftmaxLoss(balanced_softmax_counts(yp, ys, k, prior)).to(x.device)
        parts.append((lambda i, lv=level, xp=xp, hp=hp, zp=zp: lv.classifier(xp[i], hp[i], zp[i]), yp, crit))
        routing.append(int(passed.sum()) / y.numel())
        open_[open_.clone()] = ~passed
        if level_val is not None:
            with torch.no_grad():
                val_open[val_open.clone()] = ~level.passes(*level.clusters(level_val[0]))
    routing.append(int(open_.sum()) / y.numel())
    modules = [lv.classifier for lv in head.levels]
    if copy_plain:
        if plain is None:
            plain, _ = fit_plain_classifier(x, y, k, val=val, seed=seed, **sched)
        head.classifier.fc.load_state_dict(plain.fc.state_dict() if hasattr(plain, "fc") else plain.state_dict())
    else:
        keep = open_ if plain_on == "rest" else torch.ones_like(open_)
        if bool(keep.any()):
            xr, yr = x[keep], y[keep]
            with torch.no_grad():
                zr = head.levels[-1].encode(xr)[2]  # the last level's latents: the regular classifier's z
            ref = ys if plain_on == "rest" else y  # the labels reaching the last level / all
            crit = BalancedSoftmaxLoss(balanced_softmax_counts(yr, ref, k, prior)).to(x.device)
            parts.append((lambda i: head.classifier(xr[i], zr[i]), yr, crit))
            modules.append(head.classifier)
    head.eval()
    info = fit_classifiers(parts, modules, gen=gen, score=val_score(head, val, k), **sched)
    return {"flow_loss": [f["loss"] for f in flow_info], "flow_pure_clusters": [f["pure_clusters"] for f in flow_info],
            "flow_selected_epoch": [f["selected_epoch"] for f in flow_info], "train_routing": routing, **info}


HEAD_ARGS = set(inspect.signature(DLSAHead).parameters) - {"in_features", "num_classes"}


def train_dlsa(backbone_model: nn.Module, train_set, test_set=None, val_fraction: float = 0.2, seed: int = 0,
               epochs: int = 50, flow_epochs: int = 50, head_kwargs: dict | None = None,
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
        The fitted head (eval mode) and a report: "val" (mean recalls), "candidates", "selected"
        (candidate, classifier and flow epochs), "flow_pure_clusters" (validation count per flow epoch
        and level), "train_class_counts", "train_routing" and, with a test set, the "dlsa" and "plain"
        summaries (:func:`ltzoo.metrics.summarize`) and "test_routing".
    """
    if device is None:
        device = next(iter(backbone_model.parameters()), torch.empty(0)).device
    cache = (lambda name: None if cache_dir is None else Path(cache_dir) / f"{name}.safetensors")  # noqa: E731
    # the cache folder is the run's own: features of another backbone are recomputed, never reused
    x, y = extract_features(backbone_model, train_set, batch_size, device, cache("train"), progress,
                            stale_cache="recompute")
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
        if opts.get("plain_on", "all") == "all" and head.regular_inputs == "X":
            opts["plain"] = plain  # the regular classifier is the baseline itself
        info = fit_dlsa_head(head, x[tr], y[tr], val=val, flow_epochs=flow_epochs, epochs=epochs,
                             batch_size=batch_size, seed=seed, **opts)
        tried.append({"candidate": kw, "val_key": info["val_key"], "val_mean_recall": info["val_mean_recall"]})
        if best is None or info["val_key"] > best[1]["val_key"]:  # validation only, never the test set
            best = (head, info, kw)
    head, info, kw = best
    report: dict[str, Any] = {
        "train_class_counts": counts, "num_train": int(tr.numel()), "num_val": int(va.numel()), "seed": seed,
        "val": {"dlsa": info["val_mean_recall"], "plain": pinfo["val_mean_recall"]}, "candidates": tried,
        "selected": {"candidate": kw, "dlsa_epoch": info["selected_epoch"], "plain_epoch": pinfo["selected_epoch"],
                     "flow_epoch": info["flow_selected_epoch"]},
        "flow_pure_clusters": info["flow_pure_clusters"],
        "train_routing": info["train_routing"],
    }
    if test_set is not None:
        xt, yt = extract_features(backbone_model, test_set, batch_size, device, cache("test"), progress,
                                  stale_cache="recompute")
        with torch.no_grad():
            xt = xt.to(device)
            level = head.route(xt)[0].cpu()
            for who, clf in (("dlsa", head), ("plain", plain)):
                report[who] = summarize(yt, clf(xt).argmax(1).cpu(), counts, **(groups or {}))
        report["test_routing"] = (torch.bincount(level, minlength=head.depth + 1).float() / level.numel()).tolist()
    return head, report
