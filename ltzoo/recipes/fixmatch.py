"""Long-tailed semi-supervised recipe: ``train_fixmatch(cfg, labeled, unlabeled, test, plugin=...)``.

FixMatch (Sohn et al. 2020): L = L_s + lambda_u * mean_m(M_u * CE(f(A_s(u_m)), q_m)), q_m the
argmax of f(A_w(u_m)), M_u = max prob >= tau, unlabeled batch mu * B, one forward of
[A_w(x), A_w(u), A_s(u)], EMA weights (0.999) evaluated. Plugins:

* "la": FixMatch + LA, the supervised loss logit-adjusted with tau = 1 (``loss_args`` override).
* "udal": UDAL Algorithm 1: supervised and unsupervised ``UDALLoss`` branches; p_hat is updated
  with each iteration's weak probabilities before the loss; both branches ``step()`` once per
  ITERATION, so T = epochs * iterations per epoch (the paper counts epochs: same curve
  alpha_t = 1 - (1 - alpha_min)(t/T)^k, smooth within an epoch). ``udal_args`` go to both.
* "bem": BEM Algorithm 1 (:mod:`ltzoo.recipes.bem`); warm-up = bem_warmup_epochs epochs.

Conventions as ``train_supervised``: ``log.json`` / ``last.pt`` (every epoch) / ``metrics.json``
/ ``model/`` in ``output_dir``, ``resume=True``, callbacks, torchrun + DDP (per-rank batches
B / N and mu B / N, one gradient forward per iteration), bit-identical resume on CPU with
``num_workers=0``. Weight decay spares biases and normalisation parameters (every parameter with
ndim <= 1, ``builders.weight_decay_groups``) as in FixMatch, unless ``decay_bias_norm``. BatchNorm
running statistics move once per iteration, in the gradient forward (plain and BEM alike).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ltzoo.engine import builders as B
from ltzoo.engine.checkpoint import load_checkpoint, save_checkpoint
from ltzoo.engine.config import TrainConfig
from ltzoo.engine.distributed import all_reduce_sum, barrier, gather_objects, init_distributed
from ltzoo.engine.epoch import progress_enabled, to_device
from ltzoo.engine.evaluation import evaluate_run, group_split_fields, limit_test_set, resolve_group_split, write_json
from ltzoo.engine.parts import RunParts, load_parts_state, parts_state
from ltzoo.engine.schedule import build_scheduler
from ltzoo.engine.ssl_config import PLUGINS, SUP_LOSS, SSLConfig
from ltzoo.engine.ssl_data import IndexedDataset, raw_view, ssl_loader, ssl_views
from ltzoo.recipes.bem import BEMStep
from ltzoo.recipes.supervised import CHECKPOINT_NAME, LOG_NAME, dataset_label, finish_run, run_callbacks

__all__ = ["SSLConfig", "train_fixmatch", "PLUGINS"]


@dataclass
class _SSLRun:
    parts: RunParts
    labeled_view: IndexedDataset
    unlabeled_view: IndexedDataset
    labeled_loader: Any
    unlabeled_loader: Any
    bem: BEMStep | None


def _build(cfg: SSLConfig, labeled: Any, unlabeled: Any, counts: Sequence[float], info: Any) -> _SSLRun:
    world, num_classes = info.world_size, cfg.num_classes or len(counts)
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} (global) must be divisible by the {world} processes")
    counts = B.check_counts(counts, num_classes)
    weak, strong = ssl_views(unlabeled, flip=cfg.weak_flip)
    lab_view = IndexedDataset(raw_view(labeled), [ssl_views(labeled, flip=cfg.weak_flip)[0]])
    unl_view = IndexedDataset(raw_view(unlabeled), [weak, strong])
    b, bu = cfg.batch_size // world, cfg.batch_size * cfg.unlabeled_ratio // world
    steps = min(cfg.iters_per_epoch, cfg.max_steps_per_epoch or 2**62)
    total = cfg.epochs * steps  # T of UDAL, in iterations
    B.seed_everything(cfg.seed)
    model = B.build_model(cfg.model, cfg.head, num_classes, cfg.model_args).to(info.device)
    model, channels_last, scaler = B.speed_settings(model, cfg.channels_last, cfg.precision, info.device)
    losses = nn.ModuleDict()  # "la": LogitAdjustedLoss's default tau = 1
    if cfg.plugin == "udal":  # UDAL Algorithm 1: both branches
        udal = {"total_steps": total, **cfg.udal_args, "reduction": "none"}
        losses["sup"] = B.build_loss("udal", model, counts, {**udal, **cfg.loss_args, "mode": "supervised"})
        losses["unsup"] = B.build_loss("udal", model, counts, {**udal, "mode": "unsupervised"})
    else:
        losses["sup"] = B.build_loss(cfg.loss or SUP_LOSS[cfg.plugin] or "ce", model, counts, cfg.loss_args, total)
    bem = None if cfg.plugin != "bem" else BEMStep(
        counts, len(labeled), len(unlabeled), int(round(cfg.bem_warmup_epochs * steps)), cfg.bem_alpha, cfg.bem_delta,
        cfg.tau_c, cfg.tau_a, seed=cfg.seed * 7919 + 101 + info.rank, state_args=cfg.bem_args,
        temperature=cfg.bem_temperature)
    if bem is not None:
        losses["ecb"] = bem.ecb  # saves the BEMState buffers with the losses
    losses.to(info.device)
    workers = B.default_num_workers(labeled) if cfg.num_workers is None else cfg.num_workers  # strong views: per sample
    lab_loader, unl_loader = (ssl_loader(view, n, steps, cfg.seed + i, workers, info.device.type == "cuda")
                              for i, (view, n) in enumerate(((lab_view, b), (unl_view, bu))))
    params = model.parameters() if cfg.decay_bias_norm else B.weight_decay_groups(model, cfg.weight_decay)
    optimizer = B.build_optimizer(params, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.nesterov)
    scheduler = build_scheduler(optimizer, cfg.schedule, cfg.epochs, steps, cfg.warmup_epochs, cfg.milestones,
                                cfg.lr_gamma, cfg.min_lr)
    parts = RunParts(cfg, info, counts, num_classes, model, losses, lab_loader.sampler, lab_loader, steps, None,
                     torch.Generator().manual_seed(cfg.seed * 7919 + 17 + info.rank), optimizer, scheduler,
                     B.build_ema(model, cfg.ema_decay),
                     scaler, channels_last)
    return _SSLRun(parts, lab_view, unl_view, lab_loader, unl_loader, bem)


def _fixmatch_loss(run: _SSLRun, forward: nn.Module, labeled: Sequence[torch.Tensor],
                   unlabeled: Sequence[torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """FixMatch (+ LA / UDAL): one forward of [A_w(x), A_w(u), A_s(u)]."""
    cfg, losses = run.parts.cfg, run.parts.loss_fn
    xw, y, uw, us = labeled[0], labeled[1], unlabeled[0], unlabeled[1]
    b, bu = xw.shape[0], uw.shape[0]
    logits = forward(torch.cat([xw, uw, us]))
    lx, luw, lus = logits[:b], logits[b:b + bu], logits[b + bu:]
    probs = torch.softmax(luw.detach().float(), dim=1)
    conf, q = probs.max(dim=1)
    mask = (conf >= cfg.threshold).to(lus.dtype)
    loss_s = losses["sup"](lx, y).mean()
    if cfg.plugin == "udal":
        losses["unsup"].update(probs)  # p_hat: moving average of the weak predictions (UDAL Alg. 1)
        per_sample = losses["unsup"](lus, q)  # CE(f(u_s) + log(p_hat / target), q)
    else:
        per_sample = F.cross_entropy(lus, q, reduction="none")
    loss_u = (mask * per_sample).mean()
    return loss_s + cfg.lambda_u * loss_u, {"loss_s": loss_s.detach(), "loss_u": loss_u.detach(),
                                            "mask_rate": mask.mean(), "q": q}


def _train_epoch(run: _SSLRun, forward: nn.Module, epoch: int, progress: bool, cbs: list[Any]) -> dict[str, float]:
    """One epoch of ``steps_per_epoch`` iterations; returns the means over iterations and ranks."""
    p, cfg = run.parts, run.parts.cfg
    forward.train()
    keys = ("loss", "loss_s", "loss_u", "mask_rate") + (("frac_high", "frac_low", "lam") if run.bem else ())
    sums = torch.zeros(len(keys) + 3, dtype=torch.float64)  # + correct pseudo-labels, known labels, steps
    bar = tqdm(total=p.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False,
               dynamic_ncols=True)
    try:
        for step, (lab, unl) in enumerate(zip(run.labeled_loader, run.unlabeled_loader)):  # steps_per_epoch each
            lab, unl = to_device(lab, p.info.device), to_device(unl, p.info.device)
            if run.bem is not None:
                loss, stats = run.bem.loss(forward, p.model, lab, unl, p.loss_fn["sup"], run.labeled_view,
                                           run.unlabeled_view, cfg.threshold, cfg.lambda_u, p.mix_generator)
            else:
                loss, stats = _fixmatch_loss(run, forward, lab, unl)
            if not bool(torch.isfinite(loss.detach())):
                raise FloatingPointError(f"epoch {epoch + 1}, iteration {step + 1}: the loss is {float(loss.detach())}")
            p.optimizer.zero_grad(set_to_none=True)
            if p.scaler is not None:  # fp16 on a GPU
                p.scaler.scale(loss).backward()
                if cfg.grad_clip is not None:
                    p.scaler.unscale_(p.optimizer)
                    nn.utils.clip_grad_norm_(p.model.parameters(), cfg.grad_clip)
                p.scaler.step(p.optimizer)
                p.scaler.update()
            else:
                loss.backward()
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(p.model.parameters(), cfg.grad_clip)
                p.optimizer.step()
            p.scheduler.step()
            if p.ema is not None:
                p.ema.update(p.model)
            for branch in p.loss_fn.values():  # UDAL: both branches advance t once per iteration
                if callable(getattr(branch, "step", None)):
                    branch.step()
            stats["loss"] = loss.detach()
            known = unl[2] >= 0  # the unlabeled set's hidden labels (-1: unknown): pseudo-label accuracy
            extra = [((stats.pop("q") == unl[2]) & known).sum(), known.sum(), 1]
            sums += torch.tensor([float(stats[k]) for k in keys] + [float(v) for v in extra], dtype=torch.float64)
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", lr=f"{p.optimizer.param_groups[0]['lr']:.4g}")
            run_callbacks(cbs, "on_step_end", {"epoch": epoch, "step": step + 1, "loss": float(loss.detach())})
    finally:
        bar.close()
    sums = all_reduce_sum(sums)
    n = float(sums[-1].clamp_min(1))
    out = {k: float(sums[i]) / n for i, k in enumerate(keys)}
    out["pseudo_acc"] = 100.0 * float(sums[-3]) / float(sums[-2]) if float(sums[-2]) > 0 else None
    out["steps"] = int(sums[-1]) // max(1, p.info.world_size)
    return out


def train_fixmatch(cfg: SSLConfig | TrainConfig | Mapping[str, Any], labeled_set: Any, unlabeled_set: Any,
                   test_set: Any, class_counts: Sequence[float] | None = None, plugin: str | None = None,
                   callbacks: Sequence[Any] | None = None, resume: bool = False,
                   dataset_name: str | None = None) -> dict[str, Any]:
    """Train FixMatch (+ "la" / "udal" / "bem") on a labeled and an unlabeled set and evaluate it.

    Args:
        cfg: An :class:`SSLConfig` or a dict of its fields (a plain ``TrainConfig`` is converted).
        labeled_set, unlabeled_set: ltzoo datasets (e.g. from ``make_ltssl_split``); their raw
            images are re-augmented (weak / strong views); unlabeled labels serve only to report
            the pseudo-label accuracy.
        test_set: Test set of ``(image, label)``.
        class_counts: Labeled counts per class (default ``labeled_set.class_counts``): LA / UDAL
            priors, BEM's E^x, many/medium/few groups.
        plugin: Overrides ``cfg.plugin``: "none", "la", "udal" or "bem".
        callbacks, resume, dataset_name: As in ``train_supervised``.

    Returns:
        ``{"metrics" (EMA weights' when EMA is on), "history", "epochs_done", "stopped", "model",
        "class_counts", "config", "output_dir"}``; the history records also hold the epoch's
        loss terms, mask rate, pseudo-label accuracy and the plugin's state (UDAL alpha, BEM
        tau_e / bank sizes / s_hat).
    """
    if not isinstance(cfg, SSLConfig):
        cfg = SSLConfig.from_dict(cfg.to_dict() if isinstance(cfg, TrainConfig) else cfg)
    if plugin is not None:
        cfg = cfg.replace(plugin=plugin)
    if not cfg.tag:
        cfg = cfg.replace(tag=f"{dataset_label(cfg)}_fixmatch" + ("" if cfg.plugin == "none" else f"_{cfg.plugin}"))
    info = init_distributed(cfg.device)
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    counts = class_counts if class_counts is not None else getattr(labeled_set, "class_counts", None)
    if counts is None:
        raise ValueError("class_counts is required when the labeled set has no .class_counts")
    groups = resolve_group_split(cfg, labeled_set)  # the dataset's many / medium / few unless told otherwise
    cfg = cfg.replace(**group_split_fields(groups))
    run = _build(cfg, labeled_set, unlabeled_set, counts, info)
    parts, out_dir, main = run.parts, (Path(cfg.output_dir) if cfg.output_dir else None), info.rank == 0
    epoch0, step, history = 0, 0, []
    if resume:
        if out_dir is None:
            raise ValueError("resume=True needs output_dir (where last.pt is)")
        if (out_dir / CHECKPOINT_NAME).is_file():
            saved = load_checkpoint(out_dir / CHECKPOINT_NAME, info.device)
            epoch0, step, history = load_parts_state(parts, saved)
            if run.bem is not None:
                run.bem.bank.load_state_dict(saved["bank"][info.rank % len(saved["bank"])])
        else:
            warnings.warn(f"resume=True but {out_dir / CHECKPOINT_NAME} does not exist: starting from scratch",
                          stacklevel=2)
    if epoch0 == 0 and info.world_size > 1:
        B.seed_everything(cfg.seed + 1000 * info.rank)  # distinct augmentation streams per process
    forward = parts.training_callable(info.device)
    progress = progress_enabled(cfg.progress) and main
    test_loader = B.build_eval_loader(limit_test_set(test_set, cfg.max_eval_samples), cfg.eval_batch_size,
                                      cfg.num_workers)
    models = {"metrics": parts.model, "ema_metrics": None if parts.ema is None else parts.ema.module}
    cbs, stopped = list(callbacks or []), False
    for epoch in tqdm(range(epoch0, cfg.epochs), initial=epoch0, total=cfg.epochs, desc="epochs",
                      disable=not progress, dynamic_ncols=True):
        for i, loader in enumerate((run.labeled_loader, run.unlabeled_loader)):
            loader.sampler.set_epoch(epoch)
            loader.generator = B.epoch_generator(cfg.seed + i, epoch, info.rank)
        start = time.perf_counter()
        stats = _train_epoch(run, forward, epoch, progress, cbs)
        step += stats.pop("steps")
        record = {"epoch": epoch + 1, "step": step, "lr": parts.optimizer.param_groups[0]["lr"],
                  "train_loss": stats.pop("loss"), **stats, "epoch_time_s": time.perf_counter() - start}
        record.update({"udal_alpha": parts.loss_fn["unsup"].alpha} if "unsup" in parts.loss_fn else
                      run.bem.summary() if run.bem is not None else {})
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            record.update(evaluate_run(models, test_loader, parts.class_counts, groups, cfg.logit_adjust_tau,
                                       progress))
            history.append(record)
            run_callbacks(cbs, "on_evaluate", record)
        state = parts_state(parts, epoch + 1, step, history)  # collective, as is the bank gather:
        state["bank"] = gather_objects(run.bem.bank.state_dict()) if run.bem is not None else None  # every rank's
        if main and out_dir is not None:
            save_checkpoint(out_dir / CHECKPOINT_NAME, state)
            write_json(out_dir / LOG_NAME, history)
        if run_callbacks(cbs, "on_epoch_end", {"epoch": epoch + 1, "record": record, "parts": parts}):
            stopped = True
            break
    barrier()
    return finish_run(cfg, parts, labeled_set, test_set, test_loader, groups, history, stopped, out_dir, dataset_name,
                   progress)
