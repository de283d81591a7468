"""Sequence datasets for the harness: Moving MNIST, the standard datasets, your own files.

The training loop needs one call::

    data = moving_mnist(MovingMNISTConfig())     # or MovingMNISTConfig(data_root="data/")
    batches = data.train_batches(batch_size=16, seed=0)   # endless float32 [B, T, C, H, W]
    data.val, data.test                           # Datasets of float32 [T, C, H, W] items

Any registered dataset by name (``list_datasets()``, ``build_dataset("blobs", in_len=10,
out_len=10, cache_dir=...)``); your own files through a TOML description
(``register_config("storms.toml")`` or ``load_sequence_dataset(...)``, see
:mod:`datasets.files.loading`).

Without ``data_root`` the digits are embedded glyphs rendered from Pillow's font (not MNIST);
``data.name`` and ``data.source`` say so.

Layout: :mod:`.core` (what every dataset is made of), :mod:`.registry`, :mod:`.mmnist`,
:mod:`.files` (your own data), :mod:`.synthetic` (``blobs``) and :mod:`.standard` (the
published datasets and their download). Importing this package registers every dataset.
"""
from .core.errors import DatasetFileError
from .core.names import safe_component
from .core.sequence_data import SequenceData
from .files.config import SequenceFileConfig, read_config
from .files.loading import load_sequence_dataset
from .files.register import register_config
from .mmnist import register as _mmnist_register  # noqa: F401  (registers mmnist, mmnist3)
from .mmnist.data import MovingMNISTConfig, moving_mnist
from .mmnist.generator import generate_clips, trajectories
from .mmnist.glyphs import SOURCE_EMBEDDED, embedded_digits
from .registry import (
    DatasetSpec,
    UnknownDatasetError,
    build_dataset,
    datasets_table,
    get_dataset,
    list_datasets,
    register_dataset,
)
from .standard import (  # noqa: F401  (each registers its dataset)
    fashion_mnist,
    kth,
    sevir,
    taxibj,
    weatherbench,
)
from .synthetic import register as _synthetic_register  # noqa: F401  (registers blobs)

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
    "safe_component",
    "trajectories",
]
