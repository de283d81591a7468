"""WeatherBench 2 m temperature at 5.625 degrees (32 x 64), read lazily from its NetCDF files.

Facts and their sources:

- Files: one NetCDF file per year, ``2m_temperature/2m_temperature_YYYY_5.625deg.nc``,
  variable ``t2m`` (Kelvin), hourly, 32 latitudes x 64 longitudes (Rasp et al., WeatherBench,
  2020; mediatum.ub.tum.de/1524895). OpenSTL reads ``<root>/2m_temperature/*.nc`` from
  ``weather_5_625deg/`` or ``weather/`` (``dataloader_weather.py``); here
  ``DATA_ROOT/weatherbench/2m_temperature/`` first, then those two.
- Frames: 12 hourly frames in, the next 12 out (``idx_in`` -11..0, ``idx_out`` 1..12,
  ``step=1`` in OpenSTL ``dataloader_weather.py``). OpenSTL drops each split's last hour
  (``isel(time=slice(None, -1, step))``) and takes every window whose targets end before that
  (``valid_idx``), so a split of H hours gives H - 25 windows, starts 0 .. H - 26; the same here.
- Split by year as in OpenSTL's WeatherBench benchmark: train 2010-2015, validation 2016,
  test 2017-2018 (``train_time`` / ``val_time`` / ``test_time`` of ``weather_t2m_5_625`` in
  OpenSTL ``dataset_constant.py``). OpenSTL validates on the test years; here on 2016.
- Normalisation: OpenSTL z-scores with the mean and std of the training years and reports
  MSE, RMSE and MAE in Kelvin: its ``metric`` multiplies back by std and adds the mean, and
  takes per-pixel values (``spatial_norm`` for weather; ``base_method.py``, ``metrics.py``).
  The harness's models take [0, 1] (the contract of every model), so here the map is min-max
  over the training years, widened by ``MARGIN`` (5%) of that range on each side:
  ``x01 = (x - low) / (high - low)``, ``low = min - 0.05 (max - min)``, ``high = max + 0.05
  (max - min)``. The margin keeps test hours slightly colder or warmer than any training hour
  from being clipped (a clipped target would no longer be the truth, and the Kelvin metrics
  would not be OpenSTL's). Both maps are linear, so an error converted back to Kelvin means
  the same whichever map the model was trained on: ``normalization.data_units`` declares K,
  and the report shows MSE/pixel (K^2), RMSE (K) and MAE/pixel (K), the units of OpenSTL's
  WeatherBench table. The training min, max, mean and std are recorded too.
- Scores of the field: latitude-weighted RMSE and the anomaly correlation coefficient (ACC) in
  Kelvin, per lead time (Rasp et al. 2020, eqs. 1-3; bench.evaluation.gridded), the weights from
  the files' ``lat`` coordinate, the climatology the mean of the training hours per grid point.
- Reading: ``xarray.open_dataset`` per file (lazy, h5netcdf engine); a window reads only its
  24 hours. Training statistics are computed once in chunks and cached in the cache dir.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from bench.runtime.files import write_text

from ..core.windows import unit_windows
from ..registry import register_dataset
from .common import (
    MissingDataError,
    data_units,
    listing,
    need_data_root,
    normalization_record,
    windowed_data,
)

VARIABLE_FOLDER = "2m_temperature"
YEARS = {"train": (2010, 2015), "val": (2016, 2016), "test": (2017, 2018)}
IN_LEN = OUT_LEN = 12
FOLDERS = ("weatherbench", "weather_5_625deg", "weather")  # ours, then OpenSTL's two
LAYOUT = f"DIR/weatherbench/{VARIABLE_FOLDER}/{VARIABLE_FOLDER}_YYYY_5.625deg.nc, years 2010-2018"
GET_FROM = ("https://mediatum.ub.tum.de/1524895 (WeatherBench, 5.625deg/2m_temperature; unzip "
            "into DIR/weatherbench/2m_temperature/)")
STATS_CHUNK = 2048  # hours read at a time for the training statistics
MARGIN = 0.05  # of the training range, added below the min and above the max


class HourlySeries:
    """The hours of one split over several yearly files: one sequence, frames [T, 1, 32, 64]."""

    def __init__(self, arrays: list, segments: list[tuple[int, int, int]], frame_shape):
        self.arrays, self.segments = arrays, segments  # (file index, first hour, stop hour)
        self.lengths = [sum(b - a for _, a, b in segments)]
        self.frame_shape = frame_shape
        self.starts = np.cumsum([0] + [b - a for _, a, b in segments])

    def __len__(self) -> int:
        return 1

    def read(self, seq: int, start: int, stop: int) -> np.ndarray:
        parts = []
        for k, (f, a, _stop) in enumerate(self.segments):
            lo, hi = max(start, self.starts[k]), min(stop, self.starts[k + 1])
            if lo < hi:
                first = a + lo - self.starts[k]
                parts.append(np.asarray(self.arrays[f][first:first + hi - lo].values))
        return np.concatenate(parts)[:, None].astype(np.float32)


def _folder(root: Path) -> Path:
    for name in FOLDERS:
        folder = root / name / VARIABLE_FOLDER
        if folder.is_dir() and any(folder.glob("*.nc")):
            return folder
    raise MissingDataError(f"dataset 'weatherbench': expected NetCDF files in "
                           f"{root / FOLDERS[0] / VARIABLE_FOLDER}/*.nc (layout: {LAYOUT}); get "
                           f"the files from {GET_FROM}")


def _open(paths: list[Path]):
    import xarray as xr

    arrays = []
    for path in paths:
        ds = xr.open_dataset(path, cache=False)  # lazy: nothing is read until indexed
        names = list(ds.data_vars)
        if len(names) != 1:
            raise ValueError(f"{path}: holds variables {names}; expected one (t2m)")
        arrays.append(ds[names[0]])
    return arrays


def _segments(arrays, split: str) -> list[tuple[int, int, int]]:
    first, last = YEARS[split]
    out = []
    for f, array in enumerate(arrays):
        years = array["time"].dt.year.values
        inside = np.flatnonzero((years >= first) & (years <= last))
        if len(inside):
            out.append((f, int(inside[0]), int(inside[-1]) + 1))
    return sorted(out, key=lambda s: arrays[s[0]]["time"].values[s[1]])


def _train_stats(series: HourlySeries, key: str, cache_dir: Path) -> dict:
    cache_file = cache_dir / f"weatherbench-stats-v2-{key[:16]}.json"
    if cache_file.is_file():
        return json.loads(cache_file.read_text())
    low, high, total, squares, n = np.inf, -np.inf, 0.0, 0.0, 0
    length = series.lengths[0]
    per_point = np.zeros(series.frame_shape, dtype=np.float64)
    for a in range(0, length, STATS_CHUNK):
        x = series.read(0, a, min(a + STATS_CHUNK, length)).astype(np.float64)
        if not np.isfinite(x).all():
            raise ValueError("weatherbench: NaN or infinite values in the training years")
        low, high = min(low, x.min()), max(high, x.max())
        total, squares, n = total + x.sum(), squares + (x * x).sum(), n + x.size
        per_point += x.sum(axis=0)
    mean = total / n
    stats = {"min": float(low), "max": float(high), "mean": float(mean),
             "std": float(np.sqrt(max(squares / n - mean * mean, 0.0))), "hours": length,
             "climatology": (per_point / length).tolist()}
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_text(cache_file, json.dumps(stats))
    return stats


@register_dataset("weatherbench", shape="1 x 32 x 64", frames=f"{IN_LEN} -> {OUT_LEN}",
                  source="WeatherBench 2m temperature, 5.625deg NetCDF (Kelvin); train "
                         "2010-2015, val 2016, test 2017-2018 (OpenSTL)",
                  fixed={"in_len": IN_LEN, "out_len": OUT_LEN, "frame_size": 32})
def weatherbench(data_root: str | None = None, n_val: int | None = None,
                 n_test: int | None = None, cache_dir: str = ".cache/datasets", **_ignored):
    folder = _folder(need_data_root(data_root, "weatherbench", LAYOUT, GET_FROM))
    paths = sorted(folder.glob("*.nc"))
    arrays = _open(paths)
    frame_shape = (1, *(int(n) for n in arrays[0].shape[1:]))
    series, windows, first_id = [], {}, 0
    seq_len = IN_LEN + OUT_LEN
    for split in ("train", "val", "test"):
        segments = _segments(arrays, split)
        if not segments:
            a, b = YEARS[split]
            raise MissingDataError(f"dataset 'weatherbench': no {split} hours ({a}-{b}) in "
                                   f"{folder}/*.nc (layout: {LAYOUT}); get the files from "
                                   f"{GET_FROM}")
        s = HourlySeries(arrays, segments, frame_shape)
        # OpenSTL drops a split's last hour and a window needs one hour more than it uses (the
        # hour after its targets), so H hours give H - 25 windows, starts 0 .. H - 26
        windows[split] = unit_windows([(first_id, 0, s.lengths[0] - 1)], seq_len + 1, 1)
        series.append(s)
        first_id += 1
    files_info = listing(paths, folder)
    stats = _train_stats(series[0], hashlib.sha256(
        json.dumps([files_info, YEARS["train"]]).encode()).hexdigest(), Path(cache_dir))
    units = str(arrays[0].attrs.get("units", "K"))
    spread = stats["max"] - stats["min"]
    low, scale = stats["min"] - MARGIN * spread, (1 + 2 * MARGIN) * spread
    normalization = normalization_record(
        low, scale, f"minmax: min and max of the training years 2010-2015, widened by "
                    f"{MARGIN:.0%} of their range on each side", units=units,
        source="statistics from the training years, as OpenSTL dataloader_weather.py (which "
               "z-scores with them)",
        physical=data_units(units, scale, low, source="the NetCDF variable's units; OpenSTL "
                                                      "reports WeatherBench MSE/RMSE/MAE in them"),
        train_min=stats["min"], train_max=stats["max"], train_mean=stats["mean"],
        train_std=stats["std"])
    details = {
        "publisher_layout": LAYOUT, "variable": arrays[0].name,
        "split_rule": "by year: " + ", ".join(f"{k} {a}-{b}" for k, (a, b) in YEARS.items()),
        "hours": {k: s.lengths[0] for k, s in zip(YEARS, series, strict=True)},
        "window_rule": f"{IN_LEN} consecutive hours in, the next {OUT_LEN} out, every start "
                       "hour (stride 1) of a split but its last two (OpenSTL drops a split's "
                       "last hour and needs one more): H - 25 windows",
        "source_files": files_info,
    }
    data = windowed_data(
        name="weatherbench", source=f"WeatherBench {VARIABLE_FOLDER} 5.625deg ({folder}), "
                                    f"{units}, hourly, {IN_LEN} -> {OUT_LEN}",
        sources=series, windows=windows, in_len=IN_LEN, out_len=OUT_LEN,
        normalization=normalization, n_val=n_val, n_test=n_test, files={}, details=details)
    data.scoring = {"latitude_weighting": {
        "latitudes": _latitudes(arrays[0]), "climatology": np.asarray(stats["climatology"]),
        "climatology_rule": "the mean of every training hour (2010-2015) per grid point",
        "unit": units, "source": "Rasp et al. 2020, WeatherBench, eqs. 1-3: cos(latitude) "
                                 "weights normalised to mean 1"}}
    return data


def _latitudes(array) -> list[float]:
    """The latitude of each grid row, in degrees (the file's ``lat`` or ``latitude`` coordinate)."""
    for name in ("lat", "latitude"):
        if name in array.coords:
            return [float(v) for v in array[name].values]
    raise ValueError(f"weatherbench: the variable {array.name!r} has no lat/latitude coordinate "
                     f"(coordinates: {list(array.coords)}); latitude weighting needs one")
