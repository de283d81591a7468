"""What the standard datasets (mfmnist, taxibj, kth, weatherbench, sevir) share.

- :func:`require`: a missing file is one error naming the expected path, the layout and the
  page to get the files from.
- :func:`windowed_data`: a :class:`SequenceData` over lazily read sources and fixed windows per
  split (:func:`datasets.core.windows.unit_windows`), mapped to [0, 1] by
  ``x01 = (x - offset) / scale`` (the own-data convention of :mod:`datasets.files.loading`, so
  ``normalization.scale`` / ``offset`` convert metrics back to the data's units).
- :func:`data_units`: where a dataset's values have physical units that published tables use
  (traffic flow, Kelvin, VIL), the unit and the map from [0, 1] to them; the report shows
  RMSE, MSE and MAE in those units beside the [0, 1] metrics (bench.report.aggregate).
- :func:`listing`: a digest of many source files by name and size (hashing every video or
  year of a large dataset on each run would take minutes; single files are hashed in full).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..core.sequence_data import SequenceData
from ..core.windows import FrameStore, cap_windows, window_data


class MissingDataError(FileNotFoundError):
    """A standard dataset's file or folder is not where its publisher's layout puts it."""

    def __str__(self) -> str:
        return str(self.args[0])


def require(path: Path, dataset: str, layout: str, get_from: str, folder: bool = False) -> Path:
    """``path`` if it exists, else one :class:`MissingDataError` saying what and where."""
    if (path.is_dir() if folder else path.is_file()):
        return path
    raise MissingDataError(f"dataset {dataset!r}: expected {'folder' if folder else 'file'} "
                           f"{path} (layout: {layout}); get the files from {get_from}")


def need_data_root(data_root, dataset: str, layout: str, get_from: str) -> Path:
    if data_root is None:
        raise MissingDataError(f"dataset {dataset!r} reads its published files: pass --data-root "
                               f"DIR with {layout}; get the files from {get_from}")
    return Path(data_root)


def listing(paths: list[Path], root: Path) -> dict:
    """Count, total bytes and a sha256 over (relative name, size) of ``paths``."""
    rows = sorted((str(p.relative_to(root)), p.stat().st_size) for p in paths)
    text = "\n".join(f"{name}\t{size}" for name, size in rows)
    return {"root": str(root), "count": len(rows), "bytes": sum(s for _, s in rows),
            "listing_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "first": rows[0][0] if rows else None, "last": rows[-1][0] if rows else None}


def data_units(unit: str, scale, offset, source: str) -> dict:
    """The unit of a dataset's values as published (short: it heads report columns, e.g.
    "RMSE (K)") and the map from [0, 1]: ``x = x01 * scale + offset`` (per channel when the
    lists have C entries). Declared only where the data have physical units that published
    tables report (not for 8-bit pixels, whose [0, 1] metrics are what the field reports)."""
    return {"unit": unit, "scale": [float(v) for v in np.atleast_1d(scale)],
            "offset": [float(v) for v in np.atleast_1d(offset)], "source": source}


def normalization_record(offset, scale, rule: str, units: str, source: str,
                         physical: dict | None = None, **more) -> dict:
    """``physical``: a :func:`data_units` entry, stored as ``data_units``; none for datasets
    without physical units."""
    offset, scale = np.atleast_1d(offset).astype(float), np.atleast_1d(scale).astype(float)
    if physical is not None:
        more["data_units"] = physical
    return {
        "mode": "fixed" if "fixed" in rule else "minmax", "rule": rule, "source": source,
        "per_channel": len(scale) > 1, "units": units,
        "offset": [float(v) for v in offset], "scale": [float(v) for v in scale],
        "to_units": "x = x01 * scale + offset (per channel when lists have C entries); "
                    "MSE_units = MSE * scale**2, MAE_units = MAE * scale, RMSE_units = "
                    "RMSE * scale; PSNR and SSIM are computed on [0, 1]",
        "clipped_to_unit_range": True, **more,
    }


def windowed_data(*, name: str, source: str, sources: list, windows: dict[str, np.ndarray],
                  in_len: int, out_len: int, normalization: dict, n_val: int | None,
                  n_test: int | None, files: dict, details: dict) -> SequenceData:
    """``windows[split]``: int64 ``[n, 2]`` rows of (global sequence id, first frame); every split
    needs one. Validation and test are capped at ``n_val`` / ``n_test`` windows (evenly spaced),
    and the record says how many each split has and uses."""
    store = FrameStore(sources)
    store.set_mapping(normalization)
    seq_len = in_len + out_len
    for split in ("train", "val", "test"):
        if not len(windows[split]):
            raise ValueError(f"dataset {name!r}: no {split} window of {seq_len} frames in the "
                             "files found; are they complete?")
    used = {"train": windows["train"], "val": cap_windows(windows["val"], n_val),
            "test": cap_windows(windows["test"], n_test)}
    details = {**details, "normalization": normalization,
               "windows": {k: {"available": len(windows[k]), "used": len(used[k])}
                           for k in used}}
    return window_data(name=name, source=source, store=store, windows=used, in_len=in_len,
                       out_len=out_len, files=files, details=details)
