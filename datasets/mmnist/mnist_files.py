"""Readers for the Moving MNIST source files (the files of Srivastava, Mansimov and
Salakhutdinov, ICML 2015, http://www.cs.toronto.edu/~nitish/unsupervised_video/, which OpenSTL's
``openstl/datasets/dataloader_moving_mnist.py`` reads too).

- ``train-images-idx3-ubyte(.gz)``: IDX images, a 16-byte big-endian header (magic 2051,
  count, rows, columns) followed by ``count x rows x columns`` uint8 pixels.
- ``mnist_test_seq.npy``: the standard Moving MNIST test set, uint8 ``(20, N, 64, 64)``, time
  first; sequence ``i`` is ``a[:, i]``.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ..core.clips import ClipDataset
from ..core.npy import open_npy

TRAIN_IMAGES_NAMES = ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")
TEST_SEQ_NAME = "mnist_test_seq.npy"

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_GZIP_MAGIC = b"\x1f\x8b"


def find_train_images(data_root: str | os.PathLike) -> Path | None:
    """The MNIST training-image file in ``data_root`` (gzipped name first), or None."""
    for name in TRAIN_IMAGES_NAMES:
        path = Path(data_root) / name
        if path.is_file():
            return path
    return None


def find_test_seq(data_root: str | os.PathLike) -> Path | None:
    """``data_root/mnist_test_seq.npy`` if it exists, else None."""
    path = Path(data_root) / TEST_SEQ_NAME
    return path if path.is_file() else None


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX image file, gzipped or not (detected from its bytes): uint8 [N, rows, cols]."""
    path = Path(path)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 16:
        raise ValueError(f"{path}: {len(data)} bytes is too short for an IDX header (16 bytes)")
    magic, count, rows, cols = np.frombuffer(data, dtype=">u4", count=4).tolist()
    if magic != IDX_IMAGES_MAGIC:
        hint = " (that is an IDX label file)" if magic == IDX_LABELS_MAGIC else ""
        raise ValueError(
            f"{path}: IDX magic number {magic}{hint}; expected {IDX_IMAGES_MAGIC} "
            "(uint8 images, 3 dimensions)"
        )
    if count == 0 or rows == 0 or cols == 0:
        raise ValueError(f"{path}: IDX dimensions {count} x {rows} x {cols}; expected all > 0")
    expected = 16 + count * rows * cols
    if len(data) != expected:
        raise ValueError(
            f"{path}: {len(data)} bytes, expected {expected} for a 16-byte header and "
            f"{count} x {rows} x {cols} pixels"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def read_mnist_test_seq(path: str | os.PathLike) -> np.ndarray:
    """Open ``mnist_test_seq.npy`` lazily: a uint8 [N, T, 1, H, W] view of a read-only memmap.

    The file stores time first, ``(T, N, H, W)``; the returned array is a transposed view, so
    no pixel is read until it is indexed.
    """
    path = Path(path)
    try:
        seq = open_npy(path)
    except ValueError as err:  # not .npy, Python objects (never unpickled), or cut short
        raise ValueError(f"{err}; expected uint8 (20, N, 64, 64)") from None
    if seq.dtype != np.uint8:
        raise ValueError(f"{path}: dtype {seq.dtype}; expected uint8")
    if seq.ndim != 4:
        raise ValueError(
            f"{path}: shape {seq.shape} has rank {seq.ndim}; expected rank 4, "
            "(frames, sequences, height, width) such as (20, 10000, 64, 64)"
        )
    return seq.transpose(1, 0, 2, 3)[:, :, None]


class MovingMNISTTestSeq(ClipDataset):
    """Clips from ``mnist_test_seq.npy`` (time first on disk), through a read-only memmap."""

    def _open(self):
        return read_mnist_test_seq(self.path)
