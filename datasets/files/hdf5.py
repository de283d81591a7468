"""HDF5 details of the own-data reader: refusing a never-written dataset, naming what a file
holds, and reading a per-sequence attribute table as JSON-able rows."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..core.errors import DatasetFileError


def check_written(node: h5py.Dataset, key: str, path: Path) -> None:
    """An HDF5 dataset that declares a shape but holds no stored data (no chunk, no contiguous
    block ever written) reads as its fill value everywhere: refuse it rather than train on a
    constant. Checked from the file's metadata, so a huge declared shape costs nothing."""
    if node.size == 0 or node.is_virtual or node.external:
        return
    if node.id.get_storage_size() == 0:
        fill = node.fillvalue if node.fillvalue is not None else 0
        raise DatasetFileError(
            f"{path}: dataset {key!r} declares shape {node.shape} ({node.dtype}) but none of its "
            f"data was ever written: every value would read as the fill value {fill}. Write "
            "the frames, or set 'key' to the dataset that holds them")


def h5_names(f: h5py.File) -> list[str]:
    """The first 20 names (datasets and groups, at any depth) in an HDF5 file, for messages."""
    names = []
    f.visititems(lambda name, obj: names.append(name) if len(names) < 20 else None)
    return names


def h5_table(f: h5py.File, key: str, path: Path) -> list[dict]:
    """The per-sequence table ``key``: one dict per row, from a compound dataset or a group of
    1-D columns of equal length."""
    if key not in f:
        raise DatasetFileError(f"{path}: no attribute table {key!r}; it holds: "
                               f"{', '.join(h5_names(f))}")
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
    return [{k: plain_value(v[i]) for k, v in columns.items()} for i in range(n)]


def plain_value(value):
    """An HDF5 / numpy value as JSON-able Python."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.ndarray):
        return [plain_value(v) for v in value.tolist()] if value.ndim else plain_value(value.item())
    if isinstance(value, np.generic):
        return plain_value(value.item())
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    return value
