"""Sequence datasets for the harness: Moving MNIST, its file formats, and embedded digits.

The training loop needs one call::

    data = moving_mnist(MovingMNISTConfig())     # or MovingMNISTConfig(data_root="data/")
    batches = data.train_batches(batch_size=16, seed=0)   # endless float32 [B, T, C, H, W]
    data.val, data.test                           # Datasets of float32 [T, C, H, W] items

Without ``data_root`` the digits are embedded glyphs rendered from Pillow's font (not MNIST);
``data.name`` and ``data.source`` say so.
"""
from .glyphs import SOURCE_EMBEDDED, embedded_digits
from .mmnist_data import MovingMNISTConfig, moving_mnist
from .moving_mnist import generate_clips, trajectories
from .sequence_data import SequenceData

__all__ = [
    "SOURCE_EMBEDDED",
    "MovingMNISTConfig",
    "SequenceData",
    "embedded_digits",
    "generate_clips",
    "moving_mnist",
    "trajectories",
]
