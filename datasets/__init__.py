"""Sequence datasets for the harness: Moving MNIST, its file formats, and embedded digits.

The training loop needs one call::

    data = moving_mnist(MovingMNISTConfig())     # or MovingMNISTConfig(data_root="data/")
    batches = data.train_batches(batch_size=16, seed=0)   # endless float32 [B, T, C, H, W]
    data.val, data.test                           # Datasets of float32 [T, C, H, W] items

Any registered dataset by name (``list_datasets()``, ``build_dataset("blobs", in_len=10,
out_len=10, cache_dir=...)``); your own files through a TOML description
(``register_config("storms.toml")`` or ``load_sequence_dataset(...)``, see
:mod:`datasets.sequence_files`).

Without ``data_root`` the digits are embedded glyphs rendered from Pillow's font (not MNIST);
``data.name`` and ``data.source`` say so.
"""
from . import (  # noqa: F401  (the standard datasets)
                       builtin,  # noqa: F401  (registers mmnist and blobs)
                       fashion_mnist,
                       kth,
                       sevir,
                       taxibj,
                       weatherbench,
)
from .glyphs import SOURCE_EMBEDDED, embedded_digits
from .mmnist_data import MovingMNISTConfig, moving_mnist
from .moving_mnist import generate_clips, trajectories
from .registry import (
                       DatasetSpec,
                       UnknownDatasetError,
                       build_dataset,
                       datasets_table,
                       get_dataset,
                       list_datasets,
                       register_config,
                       register_dataset,
)
from .sequence_data import SequenceData
from .sequence_files import DatasetFileError, SequenceFileConfig, load_sequence_dataset, read_config

__all__ = [
    "SOURCE_EMBEDDED",
    "DatasetFileError",
    "DatasetSpec",
    "SequenceFileConfig",
    "UnknownDatasetError",
    "build_dataset",
    "datasets_table",
    "get_dataset",
    "list_datasets",
    "load_sequence_dataset",
    "read_config",
    "register_config",
    "register_dataset",
    "MovingMNISTConfig",
    "SequenceData",
    "embedded_digits",
    "generate_clips",
    "moving_mnist",
    "trajectories",
]
