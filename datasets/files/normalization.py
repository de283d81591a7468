"""Mapping stored values to [0, 1]: ``x01 = (x - offset) / scale``, statistics from training only."""
from __future__ import annotations

import hashlib
import os
import warnings
from typing import TYPE_CHECKING

import numpy as np

from .config import SequenceFileConfig

if TYPE_CHECKING:
    from ..core.windows import FrameStore

STATS_CHUNK_BYTES = 64 << 20  # frames read at a time when computing min/max
CONSTANT_SAMPLE = (8, 32)  # sequences, frames each: what a fixed range reads to spot constant data


def choose_normalization(config: SequenceFileConfig, store: FrameStore, train_units: list,
                         channels: int) -> dict:
    """The map to [0, 1] that ``config.normalize`` asks for (default: ``range`` for integer data,
    ``minmax`` over the training units for float data), as the record's ``normalization``."""
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
    if mode != "minmax":
        _warn_if_constant(config, store, train_units)
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


def _warn_if_constant(config: SequenceFileConfig, store: FrameStore, train_units: list) -> None:
    """A fixed range reads no statistics: sample a few training sequences (evenly spaced, their
    first frames) and warn when every value is the same (a file never filled, a wrong key)."""
    sequences, frames = CONSTANT_SAMPLE
    picks = np.unique(np.linspace(0, len(train_units) - 1, sequences).round().astype(int))
    seen = None
    for seq, start, stop in (train_units[i] for i in picks):
        sample = store.raw(seq, start, min(stop, start + frames))
        low, high = sample.min(), sample.max()
        if low != high or (seen is not None and low != seen):
            return
        seen = low
    warnings.warn(f"dataset {config.name!r}: every value read from {len(picks)} training "
                  f"sequences is {seen.item()}: is the data constant, the file never filled, "
                  "or 'key' the wrong dataset?", stacklevel=2)


def _version(store: FrameStore) -> tuple:
    return tuple((str(s.path), os.stat(s.path).st_mtime_ns, os.stat(s.path).st_size, s.key)
                 for s in store.sources)


_STATS_CACHE: dict = {}
MAX_CACHED_SCANS = 8  # results kept per process (each two small arrays), oldest dropped first


def scan_min_max(store: FrameStore, units: list) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (min, max) over ``units``, read in chunks of at most
    :data:`STATS_CHUNK_BYTES` with running minima and maxima, so memory stays bounded whatever
    the number of sequences; a NaN or inf anywhere is an error (float data).

    Cached per file version and set of units, so a second build in the same process reads
    nothing.
    """
    key = (_version(store), hashlib.sha256(np.asarray(units, np.int64).tobytes()).hexdigest())
    if key not in _STATS_CACHE:
        low = high = None
        for seq, start, stop in units:
            frame_bytes = int(np.prod(store.index[seq][0].frame_shape)) * 8
            step = max(1, STATS_CHUNK_BYTES // frame_bytes)
            for a in range(start, stop, step):
                frames = store.raw(seq, a, min(a + step, stop))  # raises on NaN / inf
                lo = frames.min(axis=(0, 2, 3)).astype(float)
                hi = frames.max(axis=(0, 2, 3)).astype(float)
                low = lo if low is None else np.minimum(low, lo)
                high = hi if high is None else np.maximum(high, hi)
        while len(_STATS_CACHE) >= MAX_CACHED_SCANS:
            _STATS_CACHE.pop(next(iter(_STATS_CACHE)))
        _STATS_CACHE[key] = (low, high)
    return _STATS_CACHE[key]


def _train_min_max(store: FrameStore, units: list, per_channel: bool):
    low, high = scan_min_max(store, units)
    if per_channel:
        return low, high
    return np.atleast_1d(low.min()), np.atleast_1d(high.max())
