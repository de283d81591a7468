"""Your own sequences from HDF5, ``.npy``, ``.npz`` or PredRNN ``.npz`` files, read lazily.

Layout: each file holds one or more sequences of frames ``[T, C, H, W]`` (any numeric dtype),
or another axis order named by ``layout`` (:mod:`datasets.files.layouts`: ``NTHW``, ``NTHWC``...):

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

This module assembles a dataset in named steps (:func:`load_sequence_dataset`); each kind of
work lives in its own file: :mod:`.config` (the TOML description), :mod:`.readers` (the
formats), :mod:`.splits` (the split), :mod:`.normalization` (the mapping to [0, 1]) and
:mod:`datasets.core.windows` (windows, read on demand).
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ..core.errors import DatasetFileError
from ..core.sequence_data import SequenceData
from ..core.windows import FrameStore, cap_windows, unit_windows, window_data
from .config import SequenceFileConfig, read_config
from .normalization import choose_normalization, scan_min_max
from .readers import SequenceSource, format_of
from .splits import split_ranges, split_rule, split_units

MAX_TABLE_ROWS = 2000  # larger attribute tables are recorded by digest only
SPLITS = ("train", "val", "test")


def load_sequence_dataset(config: SequenceFileConfig | str | os.PathLike, *,
                          n_val: int | None = None, n_test: int | None = None,
                          **_ignored) -> SequenceData:
    """The :class:`SequenceData` that ``config`` (or the TOML file it names) describes.

    ``n_val`` / ``n_test`` cap the validation / test windows (evenly spaced over the split).
    """
    if not isinstance(config, SequenceFileConfig):
        config = read_config(config)
    sources, roles = open_sources(config)
    store = FrameStore(sources)
    units = sequence_units(store, config)
    splits = split_sequences(config, store, units, roles)
    windows = split_windows(config, splits, {"val": n_val, "test": n_test})
    normalization = normalize(config, store, splits)
    store.set_mapping(normalization)
    details = record_details(config, store, splits, windows, normalization)
    data = window_data(
        name=config.name,
        source=config.source or f"{config.name}: sequences from "
        + ", ".join(str(s.path) for s in sources),
        store=store, windows=windows, in_len=config.in_len, out_len=config.out_len,
        files=source_files(config, sources, roles), details=details,
    )
    if config.thresholds is not None:  # skill scores at these values (bench.evaluation.skill)
        data.scoring = {"thresholds": {"values": list(config.thresholds), "unit": "file units",
                                       "source": f"'thresholds' in {config.name}'s TOML file"}}
    return data


def open_sources(config: SequenceFileConfig) -> tuple[list[SequenceSource], list[str | None]]:
    """Each file of ``config`` opened lazily, and the split it stands for (``None`` for the one
    ``path`` that is split by sequence). Every file must have the same frame shape, and a
    PredRNN file's clips the configured ``in_len`` / ``out_len``."""
    roles: list[str | None] = []
    sources = []
    for role, rel in ([(None, config.path)] if config.path else list(config.paths.items())):
        path = config.resolve(rel)
        if not path.is_file():
            raise FileNotFoundError(f"dataset {config.name!r}: no file {path}")
        sources.append(SequenceSource(path, format_of(path, config.format), config.key,
                                      config.table, config.layout))
        roles.append(role)
    shapes = {s.frame_shape for s in sources}
    if len(shapes) != 1:
        raise DatasetFileError(f"dataset {config.name!r}: files differ in frame shape: {shapes}")
    for src in sources:
        if src.format == "predrnn" and src.clip_lengths != (config.in_len, config.out_len):
            raise DatasetFileError(
                f"{src.path}: its clips are {src.clip_lengths[0]} -> {src.clip_lengths[1]} "
                f"frames; set in_len = {src.clip_lengths[0]} and out_len = "
                f"{src.clip_lengths[1]}")
    return sources, roles


def sequence_units(store: FrameStore, config: SequenceFileConfig) -> list[tuple[int, int, int]]:
    """Units ``(sequence id, start, stop)`` long enough for one window: whole sequences, or
    segments of ``segment_length`` frames where long sequences are cut before the split."""
    units = []
    for seq, length in enumerate(store.lengths.tolist()):
        step = config.segment_length or length
        units += [(seq, a, min(a + step, length)) for a in range(0, length, step)
                  if min(a + step, length) - a >= config.seq_len]
    return units


def split_sequences(config: SequenceFileConfig, store: FrameStore, units: list,
                    roles: list[str | None]) -> dict[str, list]:
    """Units per split (:func:`.splits.split_units`); no train or test unit is an error."""
    unit_roles = [roles[store.sources.index(store.index[u[0]][0])] for u in units]
    splits = split_units(config, units, unit_roles)
    for name in SPLITS:
        if not splits[name] and name != "val":
            raise DatasetFileError(
                f"dataset {config.name!r}: no {name} sequence of at least {config.seq_len} "
                f"frames ({len(units)} usable sequences in all); add sequences, shorten "
                "in_len/out_len or set segment_length to cut long sequences")
    return splits


def split_windows(config: SequenceFileConfig, splits: dict[str, list],
                  caps: dict[str, int | None]) -> dict[str, np.ndarray]:
    """Each split's windows: training every ``stride`` frames, validation and test every
    ``eval_stride`` (default: a window's length), capped at ``caps[split]`` evenly spaced
    windows. No validation window is an error."""
    windows = {name: cap_windows(unit_windows(splits[name], config.seq_len, _stride(config, name)),
                                 caps.get(name))
               for name in splits}
    if not len(windows["val"]):
        raise DatasetFileError(f"dataset {config.name!r}: no validation window; raise "
                               "split.val or give [paths] val")
    return windows


def _stride(config: SequenceFileConfig, split: str) -> int:
    return config.stride if split == "train" else config.eval_stride or config.seq_len


def normalize(config: SequenceFileConfig, store: FrameStore, splits: dict[str, list]) -> dict:
    """The normalisation record (:func:`.normalization.choose_normalization`); float data is
    scanned first in every split, so NaN or inf anywhere used is an error now, not later."""
    if store.sources[0].dtype.kind == "f":
        for name in SPLITS:  # train's scan is reused by minmax
            scan_min_max(store, splits[name])
    channels = store.sources[0].frame_shape[0]
    return choose_normalization(config, store, splits["train"], channels)


def source_files(config: SequenceFileConfig, sources: list[SequenceSource],
                 roles: list[str | None]) -> dict:
    """The files behind the dataset for ``describe``: by split role where ``[paths]`` gives them,
    else ``file`` (or ``file0``, ``file1``...)."""
    if config.paths:
        return {role: s.path for role, s in zip(roles, sources, strict=True)}
    return {f"file{i}" if len(sources) > 1 else "file": s.path for i, s in enumerate(sources)}


def record_details(config: SequenceFileConfig, store: FrameStore, splits: dict[str, list],
                   windows: dict[str, np.ndarray], normalization: dict) -> dict:
    """What the record says about the files, split, windows and normalisation."""
    sources = store.sources
    details = {
        "format": sorted({s.format for s in sources}),
        "storage": sorted({s.storage for s in sources}),
        "dtype": str(sources[0].dtype),
        "layout": sorted({s.layout for s in sources}),
        "splits": {name: {"sequences": split_ranges(splits[name], store, config),  # "0-32,40"
                          "n_sequences": len(splits[name]), "windows": len(windows[name]),
                          "stride": _stride(config, name)}
                   for name in SPLITS},
        "split_rule": split_rule(config),
        "normalization": normalization,
        "config": {k: v for k, v in config.__dict__.items() if k != "base_dir"},
    }
    attrs = _attribute_table(store, splits)
    if attrs is not None:
        details["sequence_attrs"] = attrs
    return details


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
