"""The supervised long-tailed recipe: ``train_supervised(cfg, train_set, test_set)``.

Any backbone / head / loss / sampler / mixer by name (BMLS + MS, ETF + dot-regression, LA, CB,
UDAL, ...), SGD with warm-up and a per-iteration cosine or step schedule, optional EMA, an
evaluation every ``eval_every`` epochs (and after the last) with the full ``ltzoo.metrics``
summary appended to ``output_dir/log.json``, a checkpoint ``output_dir/last.pt`` after every
epoch, ``resume=True`` to continue from it, and an optional decoupled classifier stage (cRT).

Determinism: on CPU with ``num_workers=0`` a run is a function of ``cfg.seed``: the sampler plan
depends on (seed, epoch), the loader generator is re-seeded per epoch, the mixer has its own
generator, and the checkpoint stores every RNG state; so a run interrupted after any epoch and
resumed ends with the same weights (``torch.equal``) as an uninterrupted one.

Distributed: under ``torchrun`` each process takes ``batch_size // world_size`` of every batch
from its sampler shard, gradients are averaged by DDP, evaluation runs on rank 0 (whole test
set) and is broadcast, and only rank 0 writes files. BatchNorm statistics are per process
(DDP broadcasts rank 0's buffers at each forward), so N-process runs match 1-process runs only
statistically.
"""
from __future__ import annotations

import importlib.util
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from tqdm import tqdm

from ltzoo.engine.builders import build_eval_loader, epoch_generator, seed_everything
from ltzoo.engine.checkpoint import load_checkpoint, save_checkpoint
from ltzoo.engine.config import TrainConfig
from ltzoo.engine.distributed import barrier, init_distributed
from ltzoo.engine.epoch import progress_enabled, train_one_epoch
from ltzoo.engine.evaluation import evaluate_run, group_split_fields, limit_test_set, resolve_group_split, write_json
from ltzoo.engine.objective import mixer_extras
from ltzoo.engine.parts import RunParts, build_parts, load_parts_state, parts_state

__all__ = ["train_supervised", "default_tag", "dataset_label", "LOG_NAME", "CHECKPOINT_NAME", "MODEL_DIR"]

LOG_NAME, CHECKPOINT_NAME, MODEL_DIR, METRICS_NAME = "log.json", "last.pt", "model", "metrics.json"


def dataset_label(cfg: TrainConfig) -> str:
    """The name of the test set in metrics blocks, e.g. "digits_lt_r10" (from the data fields)."""
    return f"{cfg.data}_lt_r{cfg.imb_ratio:g}"


def default_tag(cfg: TrainConfig) -> str:
    """A tag naming data and recipe, e.g. "digits_lt_r10_bmls_mixup_ms_mixed_singleton"."""
    parts = [dataset_label(cfg)]
    parts += [cfg.sampler] if cfg.sampler != "random" else []
    parts += [cfg.mixer] if cfg.mixer else []
    parts += [cfg.head] if cfg.head != "fc" else []
    parts += [cfg.loss or "default"]
    parts += ["crt"] if cfg.crt_epochs else []
    return "_".join(p.replace(".", "p") for p in parts)


def run_callbacks(callbacks: Sequence[Any], hook: str, payload: Any) -> bool:
    """Call ``hook`` on every callback that has it; True if any returned True (stop)."""
    stop = False
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None and fn(payload) is True:
            stop = True
    return stop


def _eval_models(parts: RunParts) -> dict[str, Any]:
    return {"metrics": parts.model, "ema_metrics": None if parts.ema is None else parts.ema.module}


def train_supervised(
    cfg: TrainConfig | Mapping[str, Any],
    train_set: Any,
    test_set: Any,
    class_counts: Sequence[float] | None = None,
    callbacks: Sequence[Any] | None = None,
    resume: bool = False,
    dataset_name: str | None = None,
) -> dict[str, Any]:
    """Train a long-tailed classifier and evaluate it.

    Args:
        cfg: A :class:`TrainConfig` or a dict of its fields.
        train_set: Map-style training set of ``(image, label)`` with ``targets`` (and, for stage 2,
            ``subset``).
        test_set: Test set of ``(image, label)``.
        class_counts: Training counts per class (default ``train_set.class_counts``): groups,
            LA / CB / UDAL priors, post-hoc adjustment.
        callbacks: Objects with any of ``on_step_end({"epoch": 0-based epoch index, "step": iteration
            within it (1-based), "loss"})``, ``on_evaluate(record)`` and ``on_epoch_end({"epoch":
            epochs completed, "record", "parts": the RunParts})``; an ``on_epoch_end`` returning True
            stops the run after that epoch's checkpoint (as an interruption would: no final stage, no
            saved model). An exception raised in a hook propagates (the last checkpoint stays).
        resume: Continue from ``output_dir/last.pt`` when it exists.
        dataset_name: Test-set name in the saved model's metrics block (default from ``cfg.data``).

    Returns:
        ``{"metrics": final summary (EMA weights' when EMA is on; stage 2's after cRT),
        "stage1_metrics", "history": evaluation records, "epochs_done", "stopped", "model": the
        final bare model, "class_counts", "config", "output_dir"}``; the same on every rank.
    """
    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
    info = init_distributed(cfg.device)
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)  # process-wide
    counts = class_counts if class_counts is not None else getattr(train_set, "class_counts", None)
    if counts is None:
        raise ValueError("class_counts is required when the training set has no .class_counts")
    groups = resolve_group_split(cfg, train_set)  # the dataset's many / medium / few unless told otherwise
    cfg = cfg.replace(**group_split_fields(groups))  # recorded in the checkpoint, the log and the saved model
    parts = build_parts(cfg, train_set, counts, info)
    out_dir = Path(cfg.output_dir) if cfg.output_dir else None
    main = info.rank == 0
    epoch0, step, history = 0, 0, []
    if resume:
        if out_dir is None:
            raise ValueError("resume=True needs output_dir (where last.pt is)")
        if (out_dir / CHECKPOINT_NAME).is_file():
            epoch0, step, history = load_parts_state(parts, load_checkpoint(out_dir / CHECKPOINT_NAME, info.device))
        else:
            warnings.warn(f"resume=True but {out_dir / CHECKPOINT_NAME} does not exist: starting from scratch",
                          stacklevel=2)
    if epoch0 == 0 and info.world_size > 1:
        seed_everything(cfg.seed + 1000 * info.rank)  # distinct augmentation streams per process
    forward = parts.training_callable(info.device)
    progress = progress_enabled(cfg.progress) and main
    test_loader = build_eval_loader(limit_test_set(test_set, cfg.max_eval_samples), cfg.eval_batch_size,
                                    cfg.num_workers)
    mixer_kwargs = mixer_extras(parts.mixer, parts.model)
    cbs, stopped = list(callbacks or []), False
    for epoch in tqdm(range(epoch0, cfg.epochs), initial=epoch0, total=cfg.epochs, desc="epochs",
                      disable=not progress, dynamic_ncols=True):
        parts.sampler.set_epoch(epoch)
        parts.loader.generator = epoch_generator(cfg.seed, epoch, info.rank)
        start = time.perf_counter()
        stats = train_one_epoch(
            forward, parts.loss_fn, parts.loader, parts.optimizer, parts.scheduler, info.device,
            mixer=parts.mixer, mix_generator=parts.mix_generator, mixer_kwargs=mixer_kwargs, ema=parts.ema,
            ema_source=parts.model, max_steps=parts.steps_per_epoch, grad_clip=cfg.grad_clip, progress=progress,
            scaler=parts.scaler,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            on_step=(lambda s, e=epoch: run_callbacks(cbs, "on_step_end", {"epoch": e, **s})) if cbs else None,
        )
        step += stats["steps"]
        if callable(getattr(parts.loss_fn, "step", None)):
            parts.loss_fn.step()  # progressive losses (UDAL) advance once per epoch: total_steps = epochs
        record = {"epoch": epoch + 1, "step": step, "lr": parts.optimizer.param_groups[0]["lr"],
                  "train_loss": stats["loss"], "epoch_time_s": time.perf_counter() - start}
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            record.update(evaluate_run(_eval_models(parts), test_loader, parts.class_counts, groups,
                                       cfg.logit_adjust_tau, progress))
            history.append(record)
            run_callbacks(cbs, "on_evaluate", record)
        state = parts_state(parts, epoch + 1, step, history)  # collective: every rank
        if main and out_dir is not None:
            save_checkpoint(out_dir / CHECKPOINT_NAME, state)
            write_json(out_dir / LOG_NAME, history)
        if run_callbacks(cbs, "on_epoch_end", {"epoch": epoch + 1, "record": record, "parts": parts}):
            stopped = True
            break
    barrier()
    return finish_run(cfg, parts, train_set, test_set, test_loader, groups, history, stopped, out_dir, dataset_name,
                   progress)


def finish_run(cfg: TrainConfig, parts: RunParts, train_set: Any, test_set: Any, test_loader: Any, groups: dict[str, Any],
            history: list[dict[str, Any]], stopped: bool, out_dir: Path | None, dataset_name: str | None,
            progress: bool) -> dict[str, Any]:
    """Stage 2 (cRT) if configured, the saved model and metrics file, and the result dict."""
    key = "metrics" if parts.ema is None else "ema_metrics"
    model = parts.model if parts.ema is None else parts.ema.module
    stage1 = history[-1][key] if history and history[-1].get("epoch") == cfg.epochs else None
    result = {"metrics": stage1, "stage1_metrics": stage1, "history": history, "stopped": stopped,
              "epochs_done": history[-1]["epoch"] if history else 0, "class_counts": parts.class_counts,
              "config": cfg.to_dict(), "output_dir": None if out_dir is None else str(out_dir), "model": model}
    if stopped:
        return result
    if cfg.crt_epochs > 0:
        from ltzoo.recipes.crt import retrain_classifier, without_augmentation

        retrain_classifier(model, without_augmentation(train_set, test_set), sampler=cfg.crt_sampler,
                           epochs=cfg.crt_epochs, lr=cfg.crt_lr, batch_size=cfg.crt_batch_size,
                           weight_decay=cfg.crt_weight_decay, class_counts=parts.class_counts, seed=cfg.seed,
                           progress=progress)
        record = {"epoch": cfg.epochs, "stage": "crt", "crt_epochs": cfg.crt_epochs}
        record.update(evaluate_run({"metrics": model}, test_loader, parts.class_counts, groups,
                                   cfg.logit_adjust_tau, progress))
        history.append(record)
        result["metrics"] = record["metrics"]
    if parts.info.rank == 0 and out_dir is not None:
        write_json(out_dir / LOG_NAME, history)
        write_json(out_dir / METRICS_NAME, result["metrics"])
        if cfg.save_model:
            extra = {"stage1": stage1} if cfg.crt_epochs > 0 and stage1 is not None else None
            _save_model(cfg, model, result["metrics"], parts.class_counts, out_dir / MODEL_DIR, dataset_name, extra)
    barrier()
    return result


def _save_model(cfg: TrainConfig, model: Any, metrics: Mapping[str, Any], counts: Sequence[float], directory: Path,
                dataset_name: str | None, extra: Mapping[str, Any] | None = None) -> None:
    """``ltzoo.save_pretrained`` of the final model with its metrics block (plot when matplotlib is there);
    ``extra`` summaries (e.g. stage 1 before cRT) go to ``extra_metrics`` as metrics blocks."""
    from ltzoo.hub import metrics_block, save_pretrained

    name = dataset_name or dataset_label(cfg)
    block = metrics_block(metrics, name, "test")
    extra_blocks = {k: metrics_block(v, name, "test") for k, v in (extra or {}).items()} or None
    save_pretrained(model, directory, tag=cfg.tag or default_tag(cfg), metrics=block, per_class=metrics["per_class"],
                    class_counts=list(counts), groups=resolve_group_split(cfg), recipe=cfg.to_dict(),
                    extra_metrics=extra_blocks,
                    plot=importlib.util.find_spec("matplotlib") is not None)
