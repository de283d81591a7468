"""The Moving MNIST datasets in the registry: ``mmnist`` and ``mmnist3`` (three digits per clip)."""
from __future__ import annotations

from ..core.sequence_data import SequenceData
from ..registry import register_dataset
from .data import MovingMNISTConfig, moving_mnist


@register_dataset("mmnist", shape="1 x 64 x 64", frames="10 -> 10",
                  source="Moving MNIST: MNIST digits from --data-root, else embedded glyph "
                         "digits (frame size and frames follow the preset)")
def mmnist(in_len: int = 10, out_len: int = 10, frame_size: int = 64, digits_per_clip: int = 2,
           n_val: int = 1000, n_test: int = 10000, data_root: str | None = None,
           cache_dir: str = ".cache/datasets", **_ignored) -> SequenceData:
    return moving_mnist(MovingMNISTConfig(
        digits_per_clip=digits_per_clip, frame_size=frame_size, in_len=in_len, out_len=out_len,
        n_val=n_val, n_test=n_test, data_root=data_root, cache_dir=cache_dir,
    ))


@register_dataset("mmnist3", shape="1 x 64 x 64", frames="10 -> 10",
                  source="Moving MNIST with three digits per clip, otherwise as mmnist (e.g. to "
                         "test a model trained on two digits: run_bench.py evaluate)",
                  fixed={"digits_per_clip": 3})
def mmnist3(**options) -> SequenceData:
    return mmnist(**{**options, "digits_per_clip": 3})
