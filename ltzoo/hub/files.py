"""File names and safetensors-only I/O of model folders (defined in :mod:`ltzoo.files`, below the components)."""
from ltzoo.files import (CARD_NAME, CONFIG_NAME, PICKLE_SUFFIXES, PLOT_NAME, WEIGHTS_NAME, atomic_path,  # noqa: F401
                         check_safetensors_file, read_safetensors, write_bytes_atomic, write_safetensors)

__all__ = ["WEIGHTS_NAME", "CONFIG_NAME", "CARD_NAME", "PLOT_NAME", "PICKLE_SUFFIXES", "atomic_path",
           "write_bytes_atomic", "check_safetensors_file", "read_safetensors", "write_safetensors"]
