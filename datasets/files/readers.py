"""Format readers: one file's sequences (HDF5, ``.npy``, ``.npz``, PredRNN ``.npz``), opened lazily.

Each opener returns ``{"reader": f(seq, start, stop) -> [stop - start, C, H, W], "lengths",
"frame_shape", "dtype"}``; nothing is read until a window is asked for (HDF5 slices,
memory-mapped ``.npy`` and uncompressed ``.npz`` members). Pickles are never loaded.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..core.errors import DatasetFileError
from ..core.npy import npz_memmap, npz_names, open_npy
from .config import FORMATS
from .hdf5 import check_written, h5_names, h5_table, plain_value
from .layouts import LayoutError, choose_layout, layout_opener

PREDRNN_KEYS = ("clips", "dims", "input_raw_data")


class SequenceSource:
    """One file's sequences, opened lazily (and again in each process)."""

    def __init__(self, path: Path, fmt: str, key: str | None, table: str | None,
                 layout: str | None = None):
        self.path, self.format, self.key, self.table_key = path, fmt, key, table
        if layout is not None and fmt == "predrnn":
            raise DatasetFileError(f"{path}: a PredRNN .npz file has a fixed layout; remove "
                                   f"layout = {layout!r}")
        self.layout = layout
        self._handle = None
        self._pid = None
        self.storage = "lazy"
        arrays = self._open()
        self._handle, self._pid = arrays["reader"], os.getpid()
        self.lengths = [int(n) for n in arrays["lengths"]]
        self.frame_shape = tuple(int(n) for n in arrays["frame_shape"])
        self.dtype = np.dtype(arrays["dtype"])
        self.attrs = arrays.get("attrs")
        self.key = arrays.get("key", key)
        self.layout = arrays.get("layout", "TCHW")
        if len(self.frame_shape) != 3 or min(self.frame_shape, default=0) < 1:
            raise DatasetFileError(f"{path}: frames must be [C, H, W]; got {self.frame_shape}")
        if not (np.issubdtype(self.dtype, np.integer) or np.issubdtype(self.dtype, np.floating)
                or self.dtype == np.bool_):
            raise DatasetFileError(f"{path}: data type {self.dtype} is not numeric")

    def __len__(self) -> int:
        return len(self.lengths)

    def _reader(self):
        if self._handle is None or self._pid != os.getpid():
            self._handle = self._open()["reader"]
            self._pid = os.getpid()
        return self._handle

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handle"] = state["_pid"] = None
        return state

    def read(self, seq: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` of sequence ``seq``, ``[stop - start, C, H, W]``, as stored."""
        frames = np.asarray(self._reader()(seq, start, stop))
        if frames.dtype.kind == "f" and not np.isfinite(frames).all():
            raise DatasetFileError(f"{self.path}: sequence {seq}, frames {start}-{stop - 1} "
                                   "contain NaN or infinite values")
        return frames

    # Each opener returns {"reader": f(seq, start, stop), "lengths", "frame_shape", "dtype"}.
    def _open(self) -> dict:
        try:
            return getattr(self, f"_open_{self.format}")()
        except LayoutError as error:
            raise DatasetFileError(f"{self.path}: {error}") from None

    def _open_hdf5(self) -> dict:
        f = h5py.File(self.path, "r")
        key = self.key
        if key is None:
            names = list(f.keys())
            if len(names) != 1:
                raise DatasetFileError(f"{self.path}: holds {names}; set 'key' to the one "
                                       "holding the frames")
            key = names[0]
        if key not in f:
            raise DatasetFileError(f"{self.path}: no dataset or group {key!r}; it holds: "
                                   f"{', '.join(h5_names(f)) or 'nothing'}")
        node = f[key]
        attrs = None
        if isinstance(node, h5py.Group):
            names = sorted(k for k, v in node.items() if isinstance(v, h5py.Dataset))
            if not names:
                raise DatasetFileError(f"{self.path}: group {key!r} holds no datasets")
            members = [node[n] for n in names]
            for n, m in zip(names, members, strict=True):
                check_written(m, f"{key}/{n}", self.path)
            layout = self.layout.removeprefix("N") if self.layout else None  # one per member
            opened = [layout_opener(m, choose_layout(f"{key}/{n}", m.shape, layout))
                      for n, m in zip(names, members, strict=True)]
            for n, m, o in zip(names, members, opened, strict=True):
                if o["frame_shape"] != opened[0]["frame_shape"]:
                    raise DatasetFileError(
                        f"{self.path}: {key}/{n} has shape {m.shape}; every sequence in a group "
                        f"must have the same [C, H, W] as {names[0]}: {opened[0]['frame_shape']}")
            attrs = [{"name": n, **{k: plain_value(v) for k, v in m.attrs.items()}}
                     for n, m in zip(names, members, strict=True)]
            return {"reader": lambda s, a, b: opened[s]["reader"](0, a, b),
                    "lengths": [o["lengths"][0] for o in opened],
                    "frame_shape": opened[0]["frame_shape"], "dtype": members[0].dtype,
                    "attrs": attrs, "key": key, "layout": opened[0]["layout"]}
        check_written(node, key, self.path)
        opened = layout_opener(node, choose_layout(repr(key), node.shape, self.layout))
        if self.table_key is not None:
            attrs = h5_table(f, self.table_key, self.path)
        return {**opened, "dtype": node.dtype, "attrs": attrs, "key": key}

    def _open_npy(self) -> dict:
        array = open_npy(self.path)
        return {**layout_opener(array, choose_layout("the array", array.shape, self.layout)),
                "dtype": array.dtype}

    def _open_npz(self) -> dict:
        names = npz_names(self.path)
        key = self.key
        if key is None:
            if len(names) != 1:
                raise DatasetFileError(f"{self.path}: holds arrays {names}; set 'key' to the one "
                                       "holding the frames")
            key = names[0]
        if key not in names:
            raise DatasetFileError(f"{self.path}: no array {key!r}; it holds: {', '.join(names)}")
        array = self._npz_array(key)
        return {**layout_opener(array, choose_layout(repr(key), array.shape, self.layout)),
                "dtype": array.dtype, "key": key}

    def _npz_array(self, key: str) -> np.ndarray:
        array = npz_memmap(self.path, key)
        if array is None:  # compressed member: the only way is to read it whole
            self.storage = "read whole (compressed .npz member)"
            try:
                with np.load(self.path, allow_pickle=False) as npz:
                    array = npz[key]
            except ValueError as error:
                raise DatasetFileError(f"{self.path}: cannot read {key!r}: {error}") from None
        return array

    def _open_predrnn(self) -> dict:
        names = npz_names(self.path)
        missing = [k for k in PREDRNN_KEYS if k not in names]
        if missing:
            raise DatasetFileError(f"{self.path}: PredRNN .npz file lacks key(s) {missing}; it "
                                   f"holds {names} (expected {', '.join(PREDRNN_KEYS)})")
        clips = np.asarray(self._npz_array("clips"))
        dims = np.asarray(self._npz_array("dims"))
        raw = self._npz_array("input_raw_data")
        if clips.ndim != 3 or clips.shape[0] != 2 or clips.shape[2] != 2:
            raise DatasetFileError(f"{self.path}: 'clips' must be (2, N, 2) (start, length) for "
                                   f"input and output; got shape {clips.shape}")
        if raw.ndim != 4:
            raise DatasetFileError(f"{self.path}: 'input_raw_data' must be [frames, C, H, W]; "
                                   f"got shape {raw.shape}")
        if dims.size != 3 or tuple(dims.reshape(-1)) != raw.shape[1:]:
            raise DatasetFileError(f"{self.path}: 'dims' {dims.tolist()} does not match the "
                                   f"frames {raw.shape[1:]}")
        starts, lengths = clips[..., 0].astype(np.int64), clips[..., 1].astype(np.int64)
        if (starts < 0).any() or (starts + lengths > len(raw)).any() or (lengths < 1).any():
            raise DatasetFileError(f"{self.path}: 'clips' points outside 'input_raw_data'")
        self.clip_lengths = (int(lengths[0].max()), int(lengths[1].max()))

        def read(s, a, b):
            frames = [raw[starts[0, s]:starts[0, s] + lengths[0, s]],
                      raw[starts[1, s]:starts[1, s] + lengths[1, s]]]
            if starts[0, s] + lengths[0, s] == starts[1, s]:  # contiguous: one slice
                frames = [raw[starts[0, s]:starts[1, s] + lengths[1, s]]]
            return np.concatenate(frames)[a:b] if len(frames) > 1 else frames[0][a:b]

        return {"reader": read, "lengths": (lengths[0] + lengths[1]).tolist(),
                "frame_shape": raw.shape[1:], "dtype": raw.dtype}


def format_of(path: Path, fmt: str) -> str:
    """The format of ``path``: ``fmt`` unless it is ``auto``, else from the suffix (a ``.npz``
    with the PredRNN keys is ``predrnn``)."""
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5", ".hdf", ".he5"):
        return "hdf5"
    if suffix == ".npy":
        return "npy"
    if suffix == ".npz":
        return "predrnn" if set(PREDRNN_KEYS) <= set(npz_names(path)) else "npz"
    raise ValueError(f"{path}: cannot tell the format from the suffix {suffix!r}; set "
                     f"format = one of {', '.join(FORMATS)}")
