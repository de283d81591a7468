"""Fixed evaluation clips as torch Datasets, read lazily from their files.

Clips stay uint8 on disk; an item is converted on access to float32 ``[T, C, H, W]`` in
[0, 1] (divided by 255). A file is opened when the dataset is made, and the handle held (a
cache file deleted mid-run stays readable); another process (a DataLoader worker) opens it
again on first access, so a dataset can be handed to workers without sharing an HDF5 handle.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from .eval_cache import DATASET


def to_unit_float(clips: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1]: ``clips / 255``."""
    return np.divide(clips, np.float32(255), dtype=np.float32)


class ClipDataset(Dataset):
    """The first ``n_clips`` clips of a file, each cut to its first ``seq_len`` frames."""

    def __init__(self, path: str | os.PathLike, n_clips: int, seq_len: int):
        self.path = Path(path)
        self.n_clips = n_clips
        self.seq_len = seq_len
        self._clips = None
        self._pid = None
        # Opened now and held: a cache file deleted (or replaced) mid-run stays readable
        # through this handle; only another process reopens by path.
        self._array()

    def _open(self):
        """The clips as an indexable uint8 ``[N, T, 1, H, W]`` array (subclasses)."""
        raise NotImplementedError

    def _array(self):
        if self._clips is None or self._pid != os.getpid():
            self._clips = self._open()
            self._pid = os.getpid()
        return self._clips

    def __len__(self) -> int:
        return self.n_clips

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -self.n_clips <= index < self.n_clips:
            raise IndexError(f"clip index {index} out of range for {self.n_clips} clips")
        raw = np.asarray(self._array()[index % self.n_clips, : self.seq_len])
        return torch.from_numpy(to_unit_float(raw))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_clips"] = state["_pid"] = None  # reopened in the receiving process
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, n_clips={self.n_clips}, " \
            f"seq_len={self.seq_len})"


class HDF5Clips(ClipDataset):
    """Clips from a cache file written by :func:`datasets.core.eval_cache.cached_clips`."""

    def _open(self):
        self._file = h5py.File(self.path, "r")
        return self._file[DATASET]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_file", None)
        return state

