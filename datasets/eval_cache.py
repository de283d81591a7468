"""Generated evaluation clips, written once to HDF5 and reused.

A cache file holds one dataset ``clips`` (uint8 ``[N, T, 1, H, W]``, one chunk per clip,
LZF-compressed) and attributes recording how it was made. Its name carries the readable
parameters and a digest of all of them, so different parameters never share a file. It is
written to a temporary file in the same folder (``NAME.HOST-PID.XXXX.tmp``) and moved into
place with ``os.replace``, so an interrupted write never leaves a partial file under the final
name; the temporary file of a killed writer is removed when the cache is next asked for.
"""
from __future__ import annotations

import hashlib
import json
import glob
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

CACHE_VERSION = 1  # bump when the generator or the file layout changes
DATASET = "clips"


def params_digest(params: dict) -> str:
    """sha256 of the parameters as canonical JSON (with the cache version)."""
    payload = json.dumps({**params, "version": CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


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
    remove_stale_temp_files(path)
    if _matches(path, shape, params):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
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
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is as readable as any output
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


STALE_TEMP_S = 24 * 3600  # a temporary file this old is stale whoever wrote it


def _temp_prefix(path: Path) -> str:
    """``NAME.HOST-PID.``: the writer of a temporary file, so a later start can tell a file
    left by a killed writer from one being written now."""
    return f"{path.name}.{socket.gethostname()}-{os.getpid()}."


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` that killed writers left (see :func:`_is_stale`);
    returns them. Called before each write, so they never pile up."""
    removed = []
    for tmp in path.parent.glob(glob.escape(path.name) + ".*.tmp"):
        try:
            if _is_stale(tmp, path):
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # its writer finished, or another start removed it
            pass
    return removed


def _is_stale(tmp: Path, path: Path) -> bool:
    """Written on this host by a process that no longer runs; or, when the writer is on
    another host (or unrecorded), untouched for :data:`STALE_TEMP_S`."""
    writer = tmp.name[len(path.name) + 1:-len(".tmp")].rpartition(".")[0]  # HOST-PID
    host, _, pid = writer.rpartition("-")
    if host == socket.gethostname() and pid.isdigit():
        return not _running(int(pid))
    return tmp.stat().st_mtime < time.time() - STALE_TEMP_S


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


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
