"""Windows of frames over lazily read sources, mapped to [0, 1] by ``(x - offset) / scale``."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class WindowDataset(Dataset):
    """Fixed windows ``(sequence, start)`` of ``seq_len`` frames, float32 ``[T, C, H, W]``."""

    def __init__(self, store: FrameStore, windows: np.ndarray, seq_len: int):
        self.store, self.windows, self.seq_len = store, windows, seq_len

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window index {index} out of range for {len(self)} windows")
        seq, start = self.windows[index]
        return torch.from_numpy(self.store.window(int(seq), int(start), self.seq_len))


class FrameStore:
    """All sequences of a dataset (over its sources) and the mapping to [0, 1].

    A source is anything with ``lengths`` (frames per sequence), ``frame_shape`` and
    ``read(seq, start, stop) -> [stop - start, C, H, W]`` (values as stored).
    """

    def __init__(self, sources: list):
        self.sources = sources
        self.index = [(src, i) for src in sources for i in range(len(src))]  # global sequence id
        self.lengths = np.array([src.lengths[i] for src, i in self.index], dtype=np.int64)
        self.scale = np.ones(1, np.float32)
        self.offset = np.zeros(1, np.float32)

    def raw(self, seq: int, start: int, stop: int) -> np.ndarray:
        src, i = self.index[seq]
        return src.read(i, start, stop)

    def window(self, seq: int, start: int, length: int) -> np.ndarray:
        frames = self.raw(seq, start, start + length).astype(np.float32)
        frames -= self.offset
        frames /= self.scale
        return np.clip(frames, 0.0, 1.0, out=frames)
