"""``.npy`` and ``.npz`` files read safely: memory-mapped where the bytes allow it, pickles never
loaded, and a damaged file named with what is wrong with it (numpy's own messages point at
unsafe loading or at mmap sizes instead)."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import DatasetFileError

NPY_MAGIC = b"\x93NUMPY"


def open_npy(path: str | os.PathLike) -> np.ndarray:
    """A read-only memory map of a ``.npy`` file. A file that is not one, holds Python objects
    (never unpickled) or ends early is one :class:`DatasetFileError` naming it and saying which:
    numpy's own messages point at unsafe loading or at mmap sizes instead."""
    path = Path(path)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as error:
        raise DatasetFileError(f"{path}: not a valid .npy array: {_npy_problem(path, error)}") \
            from None


def _npy_problem(path: Path, error: Exception) -> str:
    """What is wrong with a ``.npy`` file numpy refused, from its header and size."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
            return f"not a .npy file, or damaged: it does not begin with the .npy signature " \
                f"({size} bytes)"
        f.seek(0)
        try:
            header = _npy_header(f)
        except (ValueError, EOFError, SyntaxError) as header_error:
            return f"damaged header ({size} bytes): {header_error}"
        offset = f.tell()
    if header is None:
        return f"damaged header ({size} bytes): {error}"
    shape, _, dtype = header
    if dtype.hasobject:
        return "it holds Python objects, which are never unpickled; save a numeric array"
    return _incomplete(size, offset, shape, dtype) or f"{type(error).__name__}: {error}"


def _npy_header(f) -> tuple | None:
    """(shape, fortran order, dtype) of the ``.npy`` data at ``f``'s position, which is left at
    the first byte of the array; None for a format version without a public reader."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    return None


def _incomplete(size: int, offset: int, shape: tuple, dtype: np.dtype) -> str | None:
    """'damaged or incomplete (...)' when ``size`` bytes cannot hold the array, else None."""
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size >= expected:
        return None
    return (f"damaged or incomplete ({size} bytes, expected {expected} for {dtype} "
            f"{tuple(shape)} after a {offset}-byte header)")


def npz_names(path: Path) -> list[str]:
    """The array names in a ``.npz`` file (its members without ``.npy``)."""
    try:
        with zipfile.ZipFile(path) as z:
            return [n[:-4] if n.endswith(".npy") else n for n in z.namelist()]
    except zipfile.BadZipFile:
        raise DatasetFileError(f"{path}: not a .npz (zip) file") from None


def npz_memmap(path: Path, key: str) -> np.ndarray | None:
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
        header = _npy_header(f)
        if header is None:
            return None
        shape, fortran, dtype = header
        if dtype.hasobject:
            raise DatasetFileError(f"{path}: {key!r} holds Python objects (pickles are never "
                                   "loaded)")
        offset = f.tell()
    problem = _incomplete(os.path.getsize(path), offset, shape, dtype)
    if problem is not None:  # else numpy's "mmap length is greater than file size"
        raise DatasetFileError(f"{path}: member {key!r} is {problem}")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")
