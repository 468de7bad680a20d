"""A static index of the registered names, so that ``ltzoo list`` starts without importing torch.

``tests/cli/test_main.py`` checks it against the live registries; after registering a component,
update it from :func:`current_names` (``python -c "from ltzoo.cli.names import current_names;
print(current_names())"``).
"""
from __future__ import annotations

__all__ = ["NAMES", "ROLES", "current_names"]

NAMES: dict[str, tuple[str, ...]] = {
    "backbones": ("resnet152", "resnet32", "resnet32_w2", "resnet50", "resnext50_32x4d", "small_cnn", "wrn_28_2",
                  "wrn_28_8"),
    "heads": ("dlsa", "etf", "fc", "ms", "ms_wetf", "wetf"),
    "losses": ("balanced_softmax", "ce", "class_balanced", "dlsa", "dlsa_balance", "dlsa_mle", "dlsa_purity",
               "dot_regression", "ecb", "label_aware_smoothing", "logit_adjusted", "mixed_singleton", "udal"),
    "samplers": ("bmls", "class_aware", "class_balanced", "mix_bank", "random"),
    "mixers": ("cammix", "cutmix", "mixup", "saliencymix"),
    "datasets": ("cifar100_lt", "cifar10_lt", "digits_lt", "imagefolder_lt", "imagenet_lt", "inaturalist2018",
                 "places_lt", "split_list"),
    "pretrained": (),  # registered "arch.tag" weights
}
ROLES = ("models", "backbones", "heads", "losses", "samplers", "mixers", "datasets")


def current_names() -> dict[str, tuple[str, ...]]:
    """The same index read from the live registries (imports every component: slow)."""
    import ltzoo
    from ltzoo.data.factory import list_datasets

    return {
        "backbones": tuple(ltzoo.list_backbones()), "heads": tuple(ltzoo.list_heads()),
        "losses": tuple(ltzoo.list_losses()), "samplers": tuple(ltzoo.list_samplers()),
        "mixers": tuple(ltzoo.list_mixers()), "datasets": tuple(list_datasets()),
        "pretrained": tuple(ltzoo.list_models(pretrained=True)),
    }
