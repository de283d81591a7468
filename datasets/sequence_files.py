"""Your own sequences from HDF5, ``.npy``, ``.npz`` or PredRNN ``.npz`` files, read lazily.

Layout: each file holds one or more sequences of frames ``[T, C, H, W]`` (any numeric dtype),
or another axis order named by ``layout`` (:mod:`datasets.layouts`: ``NTHW``, ``NTHWC``...):

- HDF5: ``key`` names a 4-D dataset (one sequence), a 5-D dataset ``[N, T, C, H, W]``
  (N sequences), or a group whose 4-D datasets are the sequences (sorted by name; their
  HDF5 attributes become the attribute table). ``table`` optionally names a per-sequence
  table: a compound dataset or a group of 1-D columns with one row per sequence.
- ``.npy``: a 4-D or 5-D array, memory-mapped. ``.npz``: ``key`` picks the array; members
  stored uncompressed (``np.savez``) are memory-mapped, compressed ones are read whole.
- PredRNN / E3D-LSTM ``.npz`` (``clips``, ``dims``, ``input_raw_data``): each clip is a
  sequence of input + output frames. ``allow_pickle=False`` always.

Windows of ``in_len + out_len`` frames are cut inside one sequence (never across two). The
split is by sequence (test first, then validation from the remaining training sequences), so
no window of one split shares a frame with a window of another. Values are mapped to [0, 1]
by ``x01 = (x - offset) / scale`` (clipped to [0, 1]); the statistics come from the training
sequences only, and ``describe()["normalization"]`` records ``scale`` and ``offset``, so
metrics convert back to the data's units: ``MSE_units = MSE * scale**2``,
``MAE_units = MAE * scale``, ``RMSE_units = RMSE * scale``; PSNR and SSIM are on [0, 1].
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import tomllib
import torch
from torch.utils.data import Dataset

from .layouts import LayoutError, check_layout, choose_layout, layout_opener
from .sequence_data import SequenceData

FORMATS = ("hdf5", "npy", "npz", "predrnn")
PREDRNN_KEYS = ("clips", "dims", "input_raw_data")
MAX_TABLE_ROWS = 2000  # larger attribute tables are recorded by digest only
STATS_CHUNK_BYTES = 64 << 20  # frames read at a time when computing min/max


class DatasetFileError(ValueError):
    """A data file that cannot serve as a sequence dataset (missing key, wrong rank, NaN...)."""


# ----------------------------------------------------------------------------- configuration
@dataclass
class SequenceFileConfig:
    """A dataset description, as in its TOML file (see README 'Your own data')."""

    name: str
    path: str | None = None  # one file, split by sequence
    paths: dict[str, str] = field(default_factory=dict)  # or {"train": ..., "val": ..., "test": ...}
    format: str = "auto"
    key: str | None = None
    layout: str | None = None  # NTCHW, TCHW, NTHW, THW, NTHWC, THWC (default: by rank)
    table: str | None = None
    in_len: int = 10
    out_len: int = 10
    stride: int = 1  # training windows start every `stride` frames
    eval_stride: int | None = None  # validation/test windows (default: in_len + out_len)
    segment_length: int = 0  # cut sequences into segments of this many frames first (0: no)
    split: dict = field(default_factory=dict)  # method ordered|shuffled, val, test, seed
    normalize: dict = field(default_factory=dict)  # mode minmax|range|none, range, per_channel
    source: str = ""  # free text for describe()
    base_dir: str = "."  # relative paths are resolved against this (the TOML file's folder)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in "/\\ "):
            raise ValueError(f"dataset name must be a non-empty word (used as a folder name); "
                             f"got {self.name!r}")
        if (self.path is None) == (not self.paths):
            raise ValueError(f"dataset {self.name!r}: give either 'path' or a [paths] table "
                             "with train (and optionally val) and test")
        if self.paths and not {"train", "test"} <= set(self.paths) <= {"train", "val", "test"}:
            raise ValueError(f"dataset {self.name!r}: [paths] needs train and test (val "
                             f"optional); got {sorted(self.paths)}")
        if self.format not in ("auto", *FORMATS):
            raise ValueError(f"dataset {self.name!r}: format must be auto or one of "
                             f"{', '.join(FORMATS)}; got {self.format!r}")
        check_layout(self.layout, f"dataset {self.name!r}")
        for name, least in (("in_len", 1), ("out_len", 1), ("stride", 1),
                            ("segment_length", 0)):
            _check_int(f"{self.name}: {name}", getattr(self, name), least)
        if self.eval_stride is not None:
            _check_int(f"{self.name}: eval_stride", self.eval_stride, 1)
        unknown = set(self.split) - {"method", "val", "test", "seed"}
        unknown |= {f"normalize.{k}" for k in set(self.normalize) - {"mode", "range",
                                                                     "per_channel"}}
        if unknown:
            raise ValueError(f"dataset {self.name!r}: unknown option(s) {sorted(unknown)}")

    @property
    def seq_len(self) -> int:
        return self.in_len + self.out_len

    def resolve(self, path: str) -> Path:
        return (Path(self.base_dir) / Path(path).expanduser()).resolve()


def read_config(path: str | os.PathLike) -> SequenceFileConfig:
    """A :class:`SequenceFileConfig` from a TOML file (relative paths: from its folder)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    known = set(SequenceFileConfig.__dataclass_fields__) - {"base_dir"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    if "name" not in raw:
        raise ValueError(f"{path}: 'name' is required (it names the results folder)")
    return SequenceFileConfig(**raw, base_dir=str(path.resolve().parent))


def _check_int(what: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{what} must be an integer >= {least}, got {value!r}")


# ----------------------------------------------------------------------------- sources
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
                                   f"{', '.join(_h5_names(f)) or 'nothing'}")
        node = f[key]
        attrs = None
        if isinstance(node, h5py.Group):
            names = sorted(k for k, v in node.items() if isinstance(v, h5py.Dataset))
            if not names:
                raise DatasetFileError(f"{self.path}: group {key!r} holds no datasets")
            members = [node[n] for n in names]
            layout = self.layout.removeprefix("N") if self.layout else None  # one per member
            opened = [layout_opener(m, choose_layout(f"{key}/{n}", m.shape, layout))
                      for n, m in zip(names, members, strict=True)]
            for n, m, o in zip(names, members, opened, strict=True):
                if o["frame_shape"] != opened[0]["frame_shape"]:
                    raise DatasetFileError(
                        f"{self.path}: {key}/{n} has shape {m.shape}; every sequence in a group "
                        f"must have the same [C, H, W] as {names[0]}: {opened[0]['frame_shape']}")
            attrs = [{"name": n, **{k: _plain(v) for k, v in m.attrs.items()}}
                     for n, m in zip(names, members, strict=True)]
            return {"reader": lambda s, a, b: opened[s]["reader"](0, a, b),
                    "lengths": [o["lengths"][0] for o in opened],
                    "frame_shape": opened[0]["frame_shape"], "dtype": members[0].dtype,
                    "attrs": attrs, "key": key, "layout": opened[0]["layout"]}
        opened = layout_opener(node, choose_layout(repr(key), node.shape, self.layout))
        if self.table_key is not None:
            attrs = _h5_table(f, self.table_key, self.path)
        return {**opened, "dtype": node.dtype, "attrs": attrs, "key": key}

    def _open_npy(self) -> dict:
        try:
            array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError as error:
            raise DatasetFileError(f"{self.path}: cannot read as .npy: {error}") from None
        return {**layout_opener(array, choose_layout("the array", array.shape, self.layout)),
                "dtype": array.dtype}

    def _open_npz(self) -> dict:
        names = _npz_names(self.path)
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
        array = _npz_memmap(self.path, key)
        if array is None:  # compressed member: the only way is to read it whole
            self.storage = "read whole (compressed .npz member)"
            try:
                with np.load(self.path, allow_pickle=False) as npz:
                    array = npz[key]
            except ValueError as error:
                raise DatasetFileError(f"{self.path}: cannot read {key!r}: {error}") from None
        return array

    def _open_predrnn(self) -> dict:
        names = _npz_names(self.path)
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


def _h5_names(f: h5py.File) -> list[str]:
    names = []
    f.visititems(lambda name, obj: names.append(name) if len(names) < 20 else None)
    return names


def _h5_table(f: h5py.File, key: str, path: Path) -> list[dict]:
    if key not in f:
        raise DatasetFileError(f"{path}: no attribute table {key!r}; it holds: "
                               f"{', '.join(_h5_names(f))}")
    node = f[key]
    if isinstance(node, h5py.Group):
        columns = {k: v[()] for k, v in node.items() if isinstance(v, h5py.Dataset)}
    elif node.dtype.names:
        data = node[()]
        columns = {k: data[k] for k in node.dtype.names}
    else:
        raise DatasetFileError(f"{path}: attribute table {key!r} must be a compound dataset "
                               "or a group of 1-D columns")
    rows = {len(v) for v in columns.values()}
    if len(rows) != 1:
        raise DatasetFileError(f"{path}: columns of {key!r} differ in length")
    n = rows.pop()
    return [{k: _plain(v[i]) for k, v in columns.items()} for i in range(n)]


def _plain(value):
    """An HDF5 / numpy value as JSON-able Python."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _npz_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return [n[:-4] if n.endswith(".npy") else n for n in z.namelist()]
    except zipfile.BadZipFile:
        raise DatasetFileError(f"{path}: not a .npz (zip) file") from None


def _npz_memmap(path: Path, key: str) -> np.ndarray | None:
    """A read-only memmap of an uncompressed ``.npz`` member, or None when it is compressed."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(key + ".npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            return None
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            return None
        if dtype.hasobject:
            raise DatasetFileError(f"{path}: {key!r} holds Python objects (pickles are never "
                                   "loaded)")
        offset = f.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


def _format_of(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5", ".hdf", ".he5"):
        return "hdf5"
    if suffix == ".npy":
        return "npy"
    if suffix == ".npz":
        return "predrnn" if set(PREDRNN_KEYS) <= set(_npz_names(path)) else "npz"
    raise ValueError(f"{path}: cannot tell the format from the suffix {suffix!r}; set "
                     f"format = one of {', '.join(FORMATS)}")


# ----------------------------------------------------------------------------- datasets
class WindowDataset(Dataset):
    """Fixed windows ``(sequence, start)`` of ``seq_len`` frames, float32 ``[T, C, H, W]``."""

    def __init__(self, store: _Store, windows: np.ndarray, seq_len: int):
        self.store, self.windows, self.seq_len = store, windows, seq_len

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window index {index} out of range for {len(self)} windows")
        seq, start = self.windows[index]
        return torch.from_numpy(self.store.window(int(seq), int(start), self.seq_len))


class _Store:
    """All sequences of a dataset (over its files) and the mapping to [0, 1]."""

    def __init__(self, sources: list[SequenceSource]):
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


def load_sequence_dataset(config: SequenceFileConfig | str | os.PathLike, *,
                          n_val: int | None = None, n_test: int | None = None,
                          **_ignored) -> SequenceData:
    """The :class:`SequenceData` that ``config`` (or the TOML file it names) describes.

    ``n_val`` / ``n_test`` cap the validation / test windows (evenly spaced over the split).
    """
    if not isinstance(config, SequenceFileConfig):
        config = read_config(config)
    split_of_file: list[str | None] = []
    sources = []
    for role, rel in ([(None, config.path)] if config.path else list(config.paths.items())):
        path = config.resolve(rel)
        if not path.is_file():
            raise FileNotFoundError(f"dataset {config.name!r}: no file {path}")
        sources.append(SequenceSource(path, _format_of(path, config.format), config.key,
                                      config.table, config.layout))
        split_of_file.append(role)
    shapes = {s.frame_shape for s in sources}
    if len(shapes) != 1:
        raise DatasetFileError(f"dataset {config.name!r}: files differ in frame shape: {shapes}")
    channels, height, width = shapes.pop()
    store = _Store(sources)
    seq_len = config.seq_len
    for src in sources:
        if src.format == "predrnn" and src.clip_lengths != (config.in_len, config.out_len):
            raise DatasetFileError(
                f"{src.path}: its clips are {src.clip_lengths[0]} -> {src.clip_lengths[1]} "
                f"frames; set in_len = {src.clip_lengths[0]} and out_len = "
                f"{src.clip_lengths[1]}")

    # Units: (sequence id, start, stop); segments cut long sequences before the split.
    units = []
    for seq, length in enumerate(store.lengths.tolist()):
        step = config.segment_length or length
        units += [(seq, a, min(a + step, length)) for a in range(0, length, step)
                  if min(a + step, length) - a >= seq_len]
    roles = [split_of_file[sources.index(store.index[u[0]][0])] for u in units]
    splits = _split_units(config, units, roles)
    for name in ("train", "val", "test"):
        if not splits[name] and name != "val":
            raise DatasetFileError(
                f"dataset {config.name!r}: no {name} sequence of at least {seq_len} frames "
                f"({len(units)} usable sequences in all); add sequences, shorten in_len/out_len "
                "or set segment_length to cut long sequences")

    eval_stride = config.eval_stride or seq_len
    windows = {name: _windows(splits[name], seq_len,
                              config.stride if name == "train" else eval_stride)
               for name in splits}
    caps = {"val": n_val, "test": n_test}
    for name, cap in caps.items():
        if cap is not None and len(windows[name]) > cap:
            keep = np.unique(np.linspace(0, len(windows[name]) - 1, cap).round().astype(int))
            windows[name] = windows[name][keep]
    if not len(windows["val"]):
        raise DatasetFileError(f"dataset {config.name!r}: no validation window; raise "
                               "split.val or give [paths] val")

    if store.sources[0].dtype.kind == "f":  # NaN / inf anywhere used: an error now, not later
        _scan(store, [u for name in splits for u in splits[name]], False)
    normalization = _normalization(config, store, splits["train"], channels)
    store.scale = np.asarray(normalization["scale"], np.float32).reshape(-1, 1, 1)
    store.offset = np.asarray(normalization["offset"], np.float32).reshape(-1, 1, 1)
    train_windows = windows["train"]

    def make_train_clips(batch_size: int, rng: np.random.Generator) -> np.ndarray:
        picks = rng.integers(0, len(train_windows), size=batch_size)
        return np.stack([store.window(int(s), int(a), seq_len) for s, a in train_windows[picks]])

    files = {f"file{i}" if len(sources) > 1 else "file": s.path for i, s in enumerate(sources)}
    if config.paths:
        files = {role: s.path for role, s in zip(split_of_file, sources, strict=True)}
    details = {
        "format": sorted({s.format for s in sources}),
        "storage": sorted({s.storage for s in sources}),
        "dtype": str(sources[0].dtype),
        "layout": sorted({s.layout for s in sources}),
        "splits": {name: {"sequences": _ranges(splits[name], store, config),  # ids: "0-32,40"
                          "n_sequences": len(splits[name]), "windows": len(windows[name]),
                          "stride": config.stride if name == "train" else eval_stride}
                   for name in ("train", "val", "test")},
        "split_rule": _split_rule(config),
        "normalization": normalization,
        "config": {k: v for k, v in config.__dict__.items() if k != "base_dir"},
    }
    attrs = _attribute_table(store, splits)
    if attrs is not None:
        details["sequence_attrs"] = attrs
    return SequenceData(
        name=config.name,
        source=config.source or f"{config.name}: sequences from "
        + ", ".join(str(s.path) for s in sources),
        channels=channels, height=height, width=width,
        in_len=config.in_len, out_len=config.out_len,
        val=WindowDataset(store, windows["val"], seq_len),
        test=WindowDataset(store, windows["test"], seq_len),
        make_train_clips=make_train_clips, files=files, details=details,
    )


def _split_units(config: SequenceFileConfig, units: list, roles: list) -> dict[str, list]:
    """Units per split: by file role where files are given per split, else by fraction."""
    if config.paths:
        splits = {name: [u for u, r in zip(units, roles, strict=True) if r == name]
                  for name in ("train", "val", "test")}
        if splits["val"] or not config.split.get("val", 0.1):
            return splits
        rest = _divide(config, splits["train"], {"val": config.split.get("val", 0.1)})
        return {"train": rest["train"], "val": rest["val"], "test": splits["test"]}
    return _divide(config, units, {"test": config.split.get("test", 0.2),
                                   "val": config.split.get("val", 0.1)})


def _divide(config: SequenceFileConfig, units: list, fractions: dict) -> dict[str, list]:
    method = config.split.get("method", "ordered")
    if method not in ("ordered", "shuffled"):
        raise ValueError(f"dataset {config.name!r}: split.method must be ordered or shuffled; "
                         f"got {method!r}")
    order = list(range(len(units)))
    if method == "shuffled":
        order = np.random.default_rng(config.split.get("seed", 0)).permutation(len(units)).tolist()
    out = {"train": [], "val": [], "test": []}
    end = len(order)
    for name in ("test", "val"):  # taken from the end: test last, validation just before it
        fraction = fractions.get(name)
        if fraction is None:
            continue
        if not 0 <= fraction < 1:
            raise ValueError(f"dataset {config.name!r}: split.{name} must be in [0, 1); "
                             f"got {fraction!r}")
        count = max(1, round(fraction * len(units))) if fraction > 0 else 0
        count = min(count, max(end - 1, 0))
        out[name] = sorted(units[i] for i in order[end - count:end])
        end -= count
    out["train"] = sorted(units[i] for i in order[:end])
    return out


def _windows(units: list, seq_len: int, stride: int) -> np.ndarray:
    rows = [(seq, a) for seq, start, stop in units for a in range(start, stop - seq_len + 1, stride)]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def _ranges(units: list, store: _Store, config: SequenceFileConfig) -> list:
    """Sequence ids of a split ([id, start, stop] where sequences are cut into segments)."""
    if not config.segment_length:
        return compact_ids([seq for seq, _, _ in units])
    return [[seq, a, b] for seq, a, b in units]


def compact_ids(ids: list[int]) -> str:
    """Sorted ids as ranges: [0, 1, 2, 5] -> '0-2,5' (see :func:`expand_ids`)."""
    parts, ids = [], sorted(ids)
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(parts)


def expand_ids(text: str) -> list[int]:
    """The inverse of :func:`compact_ids`."""
    out = []
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


def _split_rule(config: SequenceFileConfig) -> str:
    if config.paths:
        return "by file: " + ", ".join(f"{k}={v}" for k, v in config.paths.items()) + (
            "" if "val" in config.paths else "; validation taken from the training sequences")
    s = config.split
    return (f"by sequence, {s.get('method', 'ordered')}"
            + (f" (seed {s.get('seed', 0)})" if s.get("method") == "shuffled" else "")
            + f": test {s.get('test', 0.2)}, validation {s.get('val', 0.1)} of the sequences, "
            "validation taken from the training sequences")


def _attribute_table(store: _Store, splits: dict) -> dict | None:
    if all(src.attrs is None for src in store.sources):
        return None
    rows = []
    for seq, (src, i) in enumerate(store.index):
        row = src.attrs[i] if src.attrs is not None and i < len(src.attrs) else {}
        rows.append({"id": seq, **row})
    split_of: dict[int, list] = {}
    for name, units in splits.items():
        for u in units:
            split_of.setdefault(u[0], []).append(name)
    for row in rows:
        row["split"] = "+".join(sorted(set(split_of.get(row["id"], ["unused"]))))
    if len(rows) > MAX_TABLE_ROWS:
        text = json.dumps(rows, sort_keys=True, default=str)
        return {"rows": len(rows), "columns": sorted(rows[0]),
                "sha256": hashlib.sha256(text.encode()).hexdigest()}
    return {"rows": len(rows), "table": rows}


# ----------------------------------------------------------------------------- normalisation
def _normalization(config: SequenceFileConfig, store: _Store, train_units: list,
                   channels: int) -> dict:
    spec = config.normalize
    dtype = store.sources[0].dtype
    default = "range" if np.issubdtype(dtype, np.integer) or dtype == np.bool_ else "minmax"
    mode = spec.get("mode", default)
    per_channel = bool(spec.get("per_channel", False))
    if mode == "none":
        low, high = np.zeros(1), np.ones(1)
        how = "none: values taken as already in [0, 1]"
    elif mode == "range":
        if "range" in spec:
            bounds = spec["range"]
            if (not isinstance(bounds, list) or len(bounds) != 2
                    or not all(isinstance(b, (int, float)) for b in bounds)):
                raise ValueError(f"dataset {config.name!r}: normalize.range must be "
                                 f"[low, high]; got {bounds!r}")
            low, high = np.array([bounds[0]], float), np.array([bounds[1]], float)
            how = f"range: fixed [{bounds[0]}, {bounds[1]}]"
        elif np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            low, high = np.array([info.min], float), np.array([info.max], float)
            how = f"range: the full {dtype} range"
        else:
            low, high = np.zeros(1), np.ones(1)
            how = "range: [0, 1]"
    elif mode == "minmax":
        low, high = _train_min_max(store, train_units, per_channel)
        how = ("minmax: min and max of the training sequences"
               + (", per channel" if per_channel else ""))
    else:
        raise ValueError(f"dataset {config.name!r}: normalize.mode must be minmax, range or "
                         f"none; got {mode!r}")
    if np.any(high <= low):
        raise ValueError(f"dataset {config.name!r}: normalisation range is empty "
                         f"(low {low.tolist()}, high {high.tolist()}); is the data constant?")
    scale = (high - low).astype(float)
    return {
        "mode": mode, "rule": how, "per_channel": per_channel and len(scale) > 1,
        "offset": [float(v) for v in low], "scale": [float(v) for v in scale],
        "to_units": "x = x01 * scale + offset (per channel when lists have C entries); "
                    "MSE_units = MSE * scale**2, MAE_units = MAE * scale, RMSE_units = "
                    "RMSE * scale; PSNR and SSIM are computed on [0, 1]",
        "clipped_to_unit_range": True,
    }


def _version(store: _Store) -> tuple:
    return tuple((str(s.path), os.stat(s.path).st_mtime_ns, os.stat(s.path).st_size, s.key)
                 for s in store.sources)


_STATS_CACHE: dict = {}


def _scan(store: _Store, units: list, per_channel: bool) -> dict:
    """Per unit (min, max), read in chunks; a NaN or inf anywhere is an error (float data).

    Cached per file version, so a second build in the same process reads nothing.
    """
    version = _version(store)
    axes = (0, 2, 3) if per_channel else None
    out = {}
    for unit in map(tuple, units):
        key = (version, unit, per_channel)
        if key not in _STATS_CACHE:
            seq, start, stop = unit
            frame_bytes = int(np.prod(store.index[seq][0].frame_shape)) * 8
            step = max(1, STATS_CHUNK_BYTES // frame_bytes)
            low = high = None
            for a in range(start, stop, step):
                frames = store.raw(seq, a, min(a + step, stop))  # raises on NaN / inf
                lo = np.atleast_1d(frames.min(axis=axes)).astype(float)
                hi = np.atleast_1d(frames.max(axis=axes)).astype(float)
                low = lo if low is None else np.minimum(low, lo)
                high = hi if high is None else np.maximum(high, hi)
            _STATS_CACHE[key] = (low, high)
        out[unit] = _STATS_CACHE[key]
    return out


def _train_min_max(store: _Store, units: list, per_channel: bool):
    stats = _scan(store, units, per_channel)
    low = np.min([lo for lo, _ in stats.values()], axis=0)
    high = np.max([hi for _, hi in stats.values()], axis=0)
    return low, high
