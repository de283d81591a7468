"""Mapping stored values to [0, 1]: ``x01 = (x - offset) / scale``, statistics from training only."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .file_config import SequenceFileConfig

if TYPE_CHECKING:
    from .frame_store import FrameStore

STATS_CHUNK_BYTES = 64 << 20  # frames read at a time when computing min/max


def _normalization(config: SequenceFileConfig, store: FrameStore, train_units: list,
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


def _version(store: FrameStore) -> tuple:
    return tuple((str(s.path), os.stat(s.path).st_mtime_ns, os.stat(s.path).st_size, s.key)
                 for s in store.sources)


_STATS_CACHE: dict = {}


def _scan(store: FrameStore, units: list, per_channel: bool) -> dict:
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


def _train_min_max(store: FrameStore, units: list, per_channel: bool):
    stats = _scan(store, units, per_channel)
    low = np.min([lo for lo, _ in stats.values()], axis=0)
    high = np.max([hi for _, hi in stats.values()], axis=0)
    return low, high
