"""Windows of frames over lazily read sources, mapped to [0, 1] by ``(x - offset) / scale``.

The one path from sequences to a windowed :class:`SequenceData`, shared by your own files
(:mod:`datasets.files.loading`) and the standard datasets (:mod:`datasets.standard.common`):
:func:`unit_windows` cuts the windows, :func:`cap_windows` thins an evaluation split,
:meth:`FrameStore.set_mapping` sets the map to [0, 1] and :func:`window_data` assembles the data.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .sequence_data import SequenceData


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

    def set_mapping(self, normalization: dict) -> None:
        """Map frames to [0, 1] with a normalisation record's ``offset`` and ``scale`` (one
        entry, or one per channel)."""
        self.scale = np.asarray(normalization["scale"], np.float32).reshape(-1, 1, 1)
        self.offset = np.asarray(normalization["offset"], np.float32).reshape(-1, 1, 1)

    def raw(self, seq: int, start: int, stop: int) -> np.ndarray:
        src, i = self.index[seq]
        return src.read(i, start, stop)

    def window(self, seq: int, start: int, length: int) -> np.ndarray:
        frames = self.raw(seq, start, start + length).astype(np.float32)
        frames -= self.offset
        frames /= self.scale
        return np.clip(frames, 0.0, 1.0, out=frames)


def unit_windows(units: Sequence, seq_len: int, stride: int | Sequence[int],
                 from_end: bool = False) -> np.ndarray:
    """Windows of ``seq_len`` frames inside each unit ``(sequence id, start, stop)``, int64
    ``[n, 2]`` rows of (sequence id, first frame), in unit order and, within a unit, by first
    frame. A window starts every ``stride`` frames (one stride for all units, or one per unit),
    counted from the unit's ``start``, or with ``from_end`` back from its last frame (so the
    last window ends at ``stop``). A window never leaves its unit."""
    strides = [stride] * len(units) if isinstance(stride, (int, np.integer)) else list(stride)
    rows = []
    for (seq, start, stop), step in zip(units, strides, strict=True):
        if from_end:
            rows += [(seq, a) for a in range(stop - seq_len, start - 1, -step)][::-1]
        else:
            rows += [(seq, a) for a in range(start, stop - seq_len + 1, step)]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def cap_windows(windows: np.ndarray, cap: int | None) -> np.ndarray:
    """At most ``cap`` windows, evenly spaced over the split (all of them when ``cap`` is None)."""
    if cap is not None and len(windows) > cap:
        keep = np.unique(np.linspace(0, len(windows) - 1, cap).round().astype(int))
        return windows[keep]
    return windows


def window_data(*, name: str, source: str, store: FrameStore, windows: dict[str, np.ndarray],
                in_len: int, out_len: int, files: dict, details: dict) -> SequenceData:
    """The :class:`SequenceData` over ``store``: training clips drawn uniformly from
    ``windows["train"]``, fixed ``val`` and ``test`` windows (``windows[split]``: rows of
    (global sequence id, first frame), as :func:`unit_windows` gives them)."""
    seq_len = in_len + out_len
    train = windows["train"]
    c, h, w = store.sources[0].frame_shape

    def make_train_clips(batch_size: int, rng: np.random.Generator) -> np.ndarray:
        picks = rng.integers(0, len(train), size=batch_size)
        return np.stack([store.window(int(s), int(a), seq_len) for s, a in train[picks]])

    return SequenceData(name=name, source=source, channels=c, height=h, width=w,
                        in_len=in_len, out_len=out_len,
                        val=WindowDataset(store, windows["val"], seq_len),
                        test=WindowDataset(store, windows["test"], seq_len),
                        make_train_clips=make_train_clips, files=files, details=details)
