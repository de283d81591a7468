"""Generated evaluation clips, written once to HDF5 and reused.

A cache file holds one dataset ``clips`` (uint8 ``[N, T, 1, H, W]``, one chunk per clip,
LZF-compressed) and attributes recording how it was made. Its name carries the readable
parameters and a digest of all of them, so different parameters never share a file. It is
written to a temporary file in the same folder (``.NAME.HOST-PID.XXXX.tmp``, bench.runtime.files)
and moved into place with ``os.replace``, so an interrupted write never leaves a partial file under
the final name; the temporary file of a killed writer is removed when the cache is next asked for.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from bench.runtime.files import atomic_path, remove_stale_temporaries

CACHE_VERSION = 1  # bump when the generator or the file layout changes
DATASET = "clips"


def params_digest(params: dict) -> str:
    """sha256 of the parameters as canonical JSON (with the cache version)."""
    payload = json.dumps({**params, "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def cached_clips(
    path: str | os.PathLike,
    shape: tuple[int, ...],
    make: Callable[[int, int], np.ndarray],
    params: dict,
    block: int = 256,
) -> Path:
    """Return ``path`` holding clips of ``shape``, calling ``make(start, stop)`` only if needed.

    ``make`` returns uint8 clips ``[stop - start, *shape[1:]]`` and is called for consecutive
    blocks of ``block`` clips (the last one may be shorter), which bounds memory. An existing
    file is reused when its recorded parameters and shape match; otherwise it is rewritten.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    if _matches(path, shape, params):
        return path
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        layout = {"chunks": (1, *shape[1:]), "compression": "lzf"} if shape[0] else {}
        clips = f.create_dataset(DATASET, shape=shape, dtype=np.uint8, **layout)
        for start in range(0, shape[0], block):
            stop = min(start + block, shape[0])
            part = make(start, stop)
            if part.dtype != np.uint8 or part.shape != (stop - start, *shape[1:]):
                raise ValueError(
                    f"clip maker returned {part.dtype} {part.shape}; expected uint8 "
                    f"{(stop - start, *shape[1:])}"
                )
            clips[start:stop] = part
        for key, value in params.items():
            f.attrs[key] = value
        f.attrs["version"] = CACHE_VERSION
        f.attrs["params_json"] = json.dumps(params, sort_keys=True)
    return path


def _matches(path: Path, shape: tuple[int, ...], params: dict) -> bool:
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return (
                f.attrs.get("version") == CACHE_VERSION
                and f.attrs.get("params_json") == json.dumps(params, sort_keys=True)
                and f[DATASET].shape == tuple(shape)
            )
    except (OSError, KeyError):  # unreadable or foreign file: rebuild it
        return False
