"""Pretrained weights on the Hugging Face Hub: configs, safetensors save/load, model cards, push.

    import ltzoo
    ltzoo.save_pretrained(model, "out/resnet32.cifar10_lt_r100_ce", tag="cifar10_lt_r100_ce", metrics=block)
    ltzoo.push_to_hub(model, "my-org/resnet32.cifar10_lt_r100_ce", tag="cifar10_lt_r100_ce", metrics=block)
    model = ltzoo.create_model("hf-hub:my-org/resnet32.cifar10_lt_r100_ce", pretrained=True)
    ltzoo.hub.register_pretrained("resnet32.cifar10_lt_r100_ce", num_classes=10, metrics=block, ...)
    model = ltzoo.create_model("resnet32.cifar10_lt_r100_ce", pretrained=True)

Modules: ``configs`` (PretrainedConfig, tag registry, org / local-folder settings), ``records``
(metrics block), ``files`` (safetensors-only I/O, atomic writes), ``save``, ``load``, ``cards``, ``push``.
"""
from ltzoo.files import check_safetensors_file, read_safetensors
from ltzoo.hub.cards import build_card
from ltzoo.hub.configs import (
                               DEFAULT_ORG,
                               MODEL_DIR_ENV,
                               ORG_ENV,
                               PRETRAINED,
                               PretrainedConfig,
                               get_pretrained_config,
                               hub_org,
                               local_model_dirs,
                               register_pretrained,
                               unregister_pretrained,
)
from ltzoo.hub.load import LocalCopyWarning
from ltzoo.hub.push import push_folder, push_to_hub
from ltzoo.hub.records import METRIC_KEYS, METRICS_FIELDS, check_metrics, metrics_block
from ltzoo.hub.save import config_for_model, config_json, save_pretrained
from ltzoo.hub.published import register_published

__all__ = [
    "PretrainedConfig", "PRETRAINED", "register_pretrained", "unregister_pretrained", "get_pretrained_config",
    "hub_org", "local_model_dirs", "DEFAULT_ORG", "ORG_ENV", "MODEL_DIR_ENV", "METRIC_KEYS", "METRICS_FIELDS",
    "check_metrics", "metrics_block", "save_pretrained", "config_for_model", "config_json", "push_to_hub",
    "push_folder", "build_card", "check_safetensors_file", "read_safetensors", "LocalCopyWarning",
]

register_published()  # the weights ltzoo publishes (published.json), by "arch.tag" name
