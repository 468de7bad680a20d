"""Model cards from ``config.json``: huggingface_hub's ModelCard / ModelCardData, and the per-class plot.

The card is generated from the recorded (measured) values only: the model-index holds one
EvalResult per metric of the metrics block, on its dataset and split; a checkpoint without a
metrics block gets no model-index and says so. Other measurements (``extra_metrics``, e.g. BTM
stage-1 numbers) are listed in the text only.
"""
from __future__ import annotations

import io
import json
import re
from typing import Any, Mapping, Sequence

from ltzoo.files import CARD_NAME, PLOT_NAME
from ltzoo.hub.records import METRIC_KEYS

__all__ = ["build_card", "render_card", "per_class_plot", "class_order", "hub_dataset", "METRIC_LABELS",
           "METRIC_TYPES"]

METRIC_LABELS = {
    "top1": "Top-1 accuracy", "many": "Many-shot accuracy", "medium": "Medium-shot accuracy",
    "few": "Few-shot accuracy", "hmean": "Harmonic mean of per-class recall",
    "gmean": "Geometric mean of per-class recall", "lowest": "Lowest per-class recall",
}
# model-index metric ids: the Hub's "accuracy" for the accuracies (the group in metric_config), named
# custom metrics for the per-class recall summaries
METRIC_TYPES = {
    "top1": "accuracy", "many": "accuracy", "medium": "accuracy", "few": "accuracy",
    "hmean": "harmonic_mean_recall", "gmean": "geometric_mean_recall", "lowest": "lowest_recall",
}
METRIC_CONFIGS = {"many": "many_shot", "medium": "medium_shot", "few": "few_shot"}
HUB_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet": "imagenet-1k"}  # name prefix -> Hub id
_LT_NAME = re.compile(r"^(?P<base>cifar100|cifar10|imagenet)(?:_lt)?(?:_r(?P<ratio>\d+(?:\.\d+)?))?$")


def hub_dataset(name: str) -> tuple[str, str | None, dict[str, Any] | None]:
    """The Hub dataset id, config and args of an ltzoo test-set name.

    Args:
        name: e.g. "cifar10_lt_r100" (the long-tailed training setting of the model).

    Returns:
        (dataset id, config, args): ("cifar10", "cifar10_lt_r100", {"imbalance_ratio": 100.0}) for
        CIFAR and ImageNet names; (name, None, None) for data sets without a Hub id (e.g. "digits_lt").
    """
    match = _LT_NAME.match(name)
    if match is None:
        return name, None, None
    args = {"long_tailed": "_lt" in name}
    if match["ratio"] is not None:
        args["imbalance_ratio"] = float(match["ratio"])
    return HUB_DATASETS[match["base"]], name, args


def class_order(class_counts: Sequence[float]) -> list[int]:
    """Class indices sorted by training count, most frequent first (ties by index)."""
    return sorted(range(len(class_counts)), key=lambda i: (-float(class_counts[i]), i))


def per_class_plot(per_class: Sequence[float | None], class_counts: Sequence[float], title: str) -> bytes:
    """PNG bytes of a bar chart of per-class accuracy, classes sorted by training count (descending).

    Raises:
        ImportError: If matplotlib is not installed (a dependency of ltzoo; ``pip install matplotlib``).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("the per-class accuracy plot needs matplotlib: pip install matplotlib "
                          "(or save with plot=False)") from e
    order = class_order(class_counts)
    acc = [float("nan") if per_class[i] is None else per_class[i] for i in order]
    fig = Figure(figsize=(max(6.0, min(16.0, 0.12 * len(order) + 4)), 3.6), dpi=100)
    FigureCanvasAgg(fig)  # Agg backend, no pyplot state
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(len(order)), acc, width=0.85, color="#4c72b0", label="top-1 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xlabel("class, sorted by training images (most frequent first)")
    ax.set_ylabel("top-1 accuracy (%)")
    if len(order) <= 40:
        ax.set_xticks(range(len(order)), [str(i) for i in order], fontsize=7)
    counts_ax = ax.twinx()
    counts_ax.step(range(len(order)), [float(class_counts[i]) for i in order], where="mid", color="#dd8452")
    counts_ax.set_ylabel("training images", color="#dd8452")
    if min(float(c) for c in class_counts) > 0:
        counts_ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _card_data(pcfg: Mapping[str, Any], name: str):
    from huggingface_hub import EvalResult, ModelCardData

    metrics = pcfg.get("metrics")
    results = None
    if metrics:
        dataset_id, dataset_config, dataset_args = hub_dataset(metrics["dataset"])
        results = [EvalResult(task_type="image-classification", dataset_type=dataset_id,
                              dataset_name=metrics["dataset"], dataset_config=dataset_config,
                              dataset_args=dataset_args, dataset_split=metrics["split"],
                              metric_type=METRIC_TYPES[key], metric_config=METRIC_CONFIGS.get(key),
                              metric_name=METRIC_LABELS[key], metric_value=metrics[key])
                   for key in METRIC_KEYS if metrics.get(key) is not None]
    return ModelCardData(library_name="ltzoo", license=pcfg.get("license"), pipeline_tag="image-classification",
                         tags=["image-classification", "long-tailed", "ltzoo", pcfg["architecture"]],
                         model_name=name, eval_results=results or None)


def _usage(name: str, arch: str, tag: str | None, repo: str | None, folder: str | None) -> str:
    """The create_model lines of the card: ones that load this model where it is."""
    if folder:  # saved here, not (yet) pushed
        lines = [f'model = ltzoo.create_model("local-dir:{folder}", pretrained=True).eval()',
                 f'# or: ltzoo.create_model("{arch}", pretrained="{folder}")']
    elif repo:
        lines = [f'model = ltzoo.create_model("hf-hub:{repo}", pretrained=True).eval()']
    else:
        lines = ['model = ltzoo.create_model("local-dir:/path/to/this/folder", pretrained=True).eval()']
    from ltzoo.hub.configs import PRETRAINED

    if tag and name in PRETRAINED:  # only a registered tag loads by name
        lines.append(f'# or, by tag: ltzoo.create_model("{name}", pretrained=True)')
    return "\n".join(lines) + "\n"


def _sections(config: Mapping[str, Any], plot_name: str | None, folder: str | None = None) -> list[str]:
    pcfg, args = config["pretrained_cfg"], config["model_args"]
    arch, tag, k = pcfg["architecture"], pcfg.get("tag"), config["num_classes"]
    name, repo = (f"{arch}.{tag}" if tag else arch), pcfg.get("hf_hub_id")
    c, h, w = pcfg["input_size"]
    out = [f"# {name}", pcfg.get("description") or
           f"A long-tailed image classifier made with ltzoo: backbone `{arch}`, "
           f"head `{args['head']}`, {k} classes, input {c}x{h}x{w}."]
    out.append(
        "## Usage\n\n```python\nimport ltzoo, torch\n\n"
        + _usage(name, arch, tag, repo, folder)
        + f"x = torch.randn(1, {c}, {h}, {w})  # normalised with mean={tuple(pcfg['mean'])}, std={tuple(pcfg['std'])}\n"
        f"logits = model(x)  # (1, {k})\n```\n\nAfter `import ltzoo`, `timm.create_model` loads it too.")
    metrics = pcfg.get("metrics")
    if metrics:
        rows = "\n".join(f"| {METRIC_LABELS[key]} | {_fmt(metrics[key])} |" for key in METRIC_KEYS)
        split = ""
        if pcfg.get("groups"):
            from ltzoo.metrics.groups import describe_split

            split = f" Class groups: {describe_split(pcfg['groups'])}."
        out.append(f"## Results\n\nMeasured on `{metrics['dataset']}`, split `{metrics['split']}` (percent).{split}\n\n"
                   f"| metric | value |\n|---|---|\n{rows}")
    else:
        out.append("## Results\n\nNo measured metrics are recorded for these weights.")
    for block, values in (pcfg.get("extra_metrics") or {}).items():
        rows = "\n".join(f"| {key} | {val if not isinstance(val, float) else f'{val:.2f}'} |" for key, val in values.items())
        out.append(f"### Other measurements: {block}\n\nNot test-set results of these weights.\n\n| key | value |\n|---|---|\n{rows}")
    if plot_name:
        out.append(f"## Per-class accuracy\n\n![Per-class top-1 accuracy, classes sorted by training count]({plot_name})")
    counts = pcfg.get("class_counts")
    if counts:
        lo, hi = min(counts), max(counts)
        ratio = f"{hi / lo:.1f}" if lo > 0 else "inf (some classes have no training image)"
        out.append(f"## Training class counts\n\n{len(counts)} classes, {sum(counts):g} training images, "
                   f"largest class {hi:g}, smallest {lo:g}, imbalance ratio {ratio}.\n\n"
                   f"Counts per class (class 0 first): {', '.join(f'{x:g}' for x in counts)}")
    recipe = pcfg.get("recipe")
    if recipe is not None:
        body = recipe if isinstance(recipe, str) else f"```json\n{json.dumps(recipe, indent=2)}\n```"
        out.append(f"## Training recipe\n\n{body}")
    out.append(f"## Model\n\n```json\n{json.dumps(args, indent=2)}\n```")
    paper = pcfg.get("paper")
    if paper:
        ref = paper.get("title", "")
        if paper.get("url"):
            ref = f"[{ref or paper['url']}]({paper['url']})"
        bib = f"\n\n```bibtex\n{paper['bibtex'].strip()}\n```" if paper.get("bibtex") else ""
        out.append(f"## Citation\n\n{ref}{bib}")
    out.append(f"## License\n\n{pcfg.get('license') or 'not stated'}")
    return out


def build_card(config: Mapping[str, Any], plot_name: str | None = None, folder: str | None = None):
    """The :class:`huggingface_hub.ModelCard` of a checkpoint, from its ``config.json`` content.

    Args:
        config: The config.json dict (see :mod:`ltzoo.hub.save`).
        plot_name: File name of the per-class plot to reference, or None.
        folder: Where the model is saved, when it has no explicit Hub repository (the usage line loads it there).

    Returns:
        The ModelCard (library_name "ltzoo", model-index from the metrics block).
    """
    from huggingface_hub import ModelCard

    pcfg = config["pretrained_cfg"]
    name = f"{pcfg['architecture']}.{pcfg['tag']}" if pcfg.get("tag") else pcfg["architecture"]
    body = "\n\n".join(_sections(config, plot_name, folder)) + "\n"
    return ModelCard(f"---\n{_card_data(pcfg, name).to_yaml()}\n---\n\n{body}")


def render_card(config: Mapping[str, Any], plot: bool = True, folder: str | None = None) -> dict[str, bytes]:
    """The card files of a checkpoint: ``{"README.md": ..., "per_class_accuracy.png": ...}`` (plot when possible).

    Args:
        config: The config.json dict.
        plot: Draw the per-class plot when the config has per-class accuracies.
        folder: Where the model is saved, when it has no explicit Hub repository: the card's usage
            line then loads it from there.
    """
    pcfg = config["pretrained_cfg"]
    files = {}
    if plot and pcfg.get("per_class_top1") and pcfg.get("class_counts"):
        title = f"{pcfg['architecture']}" + (f".{pcfg['tag']}" if pcfg.get("tag") else "")
        if pcfg.get("metrics"):
            title += f" on {pcfg['metrics']['dataset']} ({pcfg['metrics']['split']})"
        files[PLOT_NAME] = per_class_plot(pcfg["per_class_top1"], pcfg["class_counts"], title)
    card = build_card(config, PLOT_NAME if files else None, folder)
    return {CARD_NAME: str(card).encode("utf-8"), **files}
