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

This module assembles a dataset; each step lives in its own file: :mod:`.file_config` (the
TOML description), :mod:`.file_readers` (the formats), :mod:`.file_splits` (split and windows),
:mod:`.file_normalization` (the mapping to [0, 1]) and :mod:`.frame_store` (windows read on
demand).
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .file_config import FORMATS, DatasetFileError, SequenceFileConfig, read_config
from .file_normalization import _normalization, _scan
from .file_readers import PREDRNN_KEYS, SequenceSource, _format_of
from .file_splits import _ranges, _split_rule, _split_units, _windows, compact_ids, expand_ids
from .frame_store import FrameStore, WindowDataset
from .sequence_data import SequenceData

__all__ = ["FORMATS", "PREDRNN_KEYS", "DatasetFileError", "SequenceFileConfig", "SequenceSource",
           "WindowDataset", "compact_ids", "expand_ids", "load_sequence_dataset", "read_config"]

MAX_TABLE_ROWS = 2000  # larger attribute tables are recorded by digest only


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
    store = FrameStore(sources)
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
        for name in ("train", "val", "test"):  # train's scan is reused by minmax
            _scan(store, splits[name])
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


def _attribute_table(store: FrameStore, splits: dict) -> dict | None:
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
