"""SEVIR vertically integrated liquid (VIL): storm events from its HDF5 files and catalog.

Facts and their sources:

- Files: ``CATALOG.csv`` (one row per event and image type: ``id``, ``file_name``,
  ``file_index``, ``img_type``, ``time_utc``, ...) and ``data/vil/YYYY/SEVIR_VIL_*.h5`` whose
  dataset ``vil`` is uint8 ``[N, 384, 384, 49]``: 49 frames 5 minutes apart over 384 km x
  384 km (Veillette et al., SEVIR, NeurIPS 2020; the AWS bucket ``s3://sevir``, laid out
  here as ``DATA_ROOT/sevir/CATALOG.csv`` and ``DATA_ROOT/sevir/data/...``).
- Frames: 13 in, 12 out (25-frame windows), windows every 12 frames of an event ("sequent"
  sampling, ``seq_len=25``, ``stride=12``: Earthformer's SEVIR loader, which PredBench uses).
- Split by event date (``time_utc``), with Earthformer's bounds (``start_date`` exclusive,
  ``end_date`` inclusive in ``SEVIRDataLoader``; split dates ``train_val_split_date`` (2019, 1, 1)
  and ``train_test_split_date`` (2019, 6, 1) of ``SEVIRLightningDataModule``): train
  ``time_utc <= 2019-01-01``, validation ``2019-01-01 < time_utc <= 2019-06-01``, test
  ``time_utc > 2019-06-01``. PredBench's SEVIR split is Earthformer's.
- Events kept as Earthformer's loader keeps them: its default ``catalog_filter`` keeps only
  catalog rows with ``pct_missing == 0`` (applied when the catalog has that column, as SEVIR's
  does; the record says whether it was), and an event id with more than one vil row is dropped
  (``_compute_samples``: "repeated IDs ... a bug in SEVIR").
- Normalisation: VIL / 255, offset 0 (Earthformer ``PREPROCESS_SCALE_SEVIR['vil'] = 1/255``,
  ``PREPROCESS_OFFSET_SEVIR['vil'] = 0``). The units are SEVIR's stored 0-255 VIL levels (a
  nonlinear encoding of kg/m^2), the scale on which Earthformer's CSI thresholds (16, 74, 133,
  160, 181, 219) are set; ``normalization.data_units`` declares them, so the report shows RMSE
  and MAE in VIL levels beside the [0, 1] metrics.
- Skill scores: CSI, POD, SUCR, BIAS and HSS at VIL levels 16, 74, 133, 160, 181 and 219 with
  ``value >= threshold`` (the SEVIR challenge's ``src/evaluate_models.py``; Earthformer
  ``cfg_sevir.yaml`` and ``metrics/skill_scores.py``), declared in ``scoring`` and scored by
  bench.evaluation.skill; the same levels for sevir-128 (its pooled frames keep the units).
- ``sevir-128``: frames average-pooled 3 x 3 to 128 x 128, as Earthformer downsamples SEVIR
  (``avg_pool2d``); same events, split and windows. A CPU-sized variant, not a published table.
- Reading: h5py slices of one event's frames at a time; the catalog is read with pandas.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..core.windows import unit_windows
from ..registry import register_dataset
from .common import (
    MissingDataError,
    data_units,
    listing,
    need_data_root,
    normalization_record,
    require,
    windowed_data,
)

IN_LEN, OUT_LEN, STRIDE = 13, 12, 12
VIL_UNIT = "VIL level"
TRAIN_VAL_DATE, TRAIN_TEST_DATE = "2019-01-01", "2019-06-01"
THRESHOLDS = (16, 74, 133, 160, 181, 219)
THRESHOLDS_SOURCE = ("VIL levels of the SEVIR nowcasting challenge (src/evaluate_models.py) and "
                     "Earthformer (cfg_sevir.yaml, metrics/skill_scores.py), used by PredBench")
LAYOUT = "DIR/sevir/CATALOG.csv and DIR/sevir/data/vil/YYYY/SEVIR_VIL_*.h5"
GET_FROM = ("the AWS open data bucket s3://sevir (registry.opendata.aws/sevir): aws s3 cp "
            "--no-sign-request s3://sevir/CATALOG.csv DIR/sevir/ and aws s3 sync "
            "--no-sign-request s3://sevir/data/vil DIR/sevir/data/vil")


class SevirEvents:
    """Events ``(file, index)``; frames float32 ``[T, 1, H/pool, W/pool]`` in 0-255."""

    def __init__(self, events: list[tuple[Path, int]], pool: int, frame_count: int, hw):
        self.events, self.pool = events, pool
        self.lengths = [frame_count] * len(events)
        self.frame_shape = (1, hw[0] // pool, hw[1] // pool)
        self._files: dict = {}

    def __len__(self) -> int:
        return len(self.events)

    def __getstate__(self):
        return {**self.__dict__, "_files": {}}

    def read(self, seq: int, start: int, stop: int) -> np.ndarray:
        path, index = self.events[seq]
        if path not in self._files:
            self._files[path] = h5py.File(path, "r")
        frames = self._files[path]["vil"][index, :, :, start:stop]  # [H, W, T]: one slice
        frames = np.moveaxis(frames, -1, 0).astype(np.float32)
        if self.pool > 1:
            t, h, w = frames.shape
            p = self.pool
            frames = frames[:, :h // p * p, :w // p * p].reshape(t, h // p, p, w // p, p)
            frames = frames.mean(axis=(2, 4))
        return frames[:, None]


def _keep_complete_events(vil):
    """Earthformer's event filters: rows with ``pct_missing == 0`` (when the catalog has the
    column), then no event id with more than one vil row. Returns the rows kept and a note."""
    before = len(vil)
    if "pct_missing" in vil.columns:
        vil = vil[vil["pct_missing"] == 0]
        missing = f"pct_missing == 0 kept {len(vil)} of {before} vil rows"
    else:
        missing = "the catalog has no pct_missing column: no rows dropped for missing data"
    repeated = vil["id"].duplicated(keep=False) if "id" in vil.columns else None
    if repeated is None:
        ids = "the catalog has no id column: repeated events not checked"
    else:
        ids = f"{int(repeated.sum())} rows of event ids listed more than once dropped"
        vil = vil[~repeated]
    if vil.empty:
        raise MissingDataError(f"no vil event left after Earthformer's filters ({missing}; {ids})")
    return vil, f"{missing}; {ids} (Earthformer SEVIRDataLoader)"


def sevir_dataset(name: str, pool: int, data_root, n_val, n_test):
    import pandas as pd

    root = need_data_root(data_root, name, LAYOUT, GET_FROM) / "sevir"
    catalog_path = require(root / "CATALOG.csv", name, LAYOUT, GET_FROM)
    catalog = pd.read_csv(catalog_path, low_memory=False)
    missing = {"file_name", "file_index", "img_type", "time_utc"} - set(catalog.columns)
    if missing:
        raise ValueError(f"{catalog_path}: no column(s) {sorted(missing)}; is it SEVIR's "
                         "CATALOG.csv?")
    vil = catalog[catalog["img_type"] == "vil"].copy()
    vil["time"] = pd.to_datetime(vil["time_utc"])
    vil = vil.sort_values(["time", "file_name", "file_index"])
    if vil.empty:
        raise MissingDataError(f"dataset {name!r}: {catalog_path} lists no vil events")
    vil, kept = _keep_complete_events(vil)
    paths = sorted({root / "data" / f for f in vil["file_name"]})
    for path in paths:
        require(path, name, LAYOUT, GET_FROM)
    with h5py.File(paths[0], "r") as f:
        if "vil" not in f:
            raise ValueError(f"{paths[0]}: no dataset 'vil'; it holds {list(f)}")
        _, h, w, frame_count = f["vil"].shape
    splits = {"train": vil["time"] <= TRAIN_VAL_DATE,
              "val": (vil["time"] > TRAIN_VAL_DATE) & (vil["time"] <= TRAIN_TEST_DATE),
              "test": vil["time"] > TRAIN_TEST_DATE}
    seq_len = IN_LEN + OUT_LEN
    sources, windows, first_id, event_ids = [], {}, 0, {}
    for split, mask in splits.items():
        rows = vil[mask]
        events = [(root / "data" / f, int(i)) for f, i in zip(rows["file_name"], rows["file_index"],
                                                              strict=True)]
        if not events:
            raise MissingDataError(f"dataset {name!r}: {catalog_path} lists no {split} vil "
                                   f"event (split dates {TRAIN_VAL_DATE}, {TRAIN_TEST_DATE})")
        source = SevirEvents(events, pool, frame_count, (h, w))
        units = [(first_id + i, 0, frame_count) for i in range(len(events))]
        windows[split] = unit_windows(units, seq_len, STRIDE)
        event_ids[split] = {"events": len(events),
                            "first": str(rows["time"].min()), "last": str(rows["time"].max())}
        sources.append(source)
        first_id += len(events)
    normalization = normalization_record(
        0.0, 255.0, "fixed: VIL / 255", units="SEVIR VIL level (uint8 0-255, nonlinear in kg/m^2)",
        source="Earthformer SEVIR loader: PREPROCESS_SCALE_SEVIR vil 1/255, offset 0",
        physical=data_units(VIL_UNIT, 255.0, 0.0, source="SEVIR's stored uint8 VIL levels, "
                                                         "the scale of its CSI thresholds"))
    details = {
        "publisher_layout": LAYOUT,
        "split_rule": f"by event date (time_utc): train <= {TRAIN_VAL_DATE} < val <= "
                      f"{TRAIN_TEST_DATE} < test (Earthformer's bounds)",
        "event_filter": kept,
        "splits": event_ids,
        "window_rule": f"{seq_len} frames from each event, every {STRIDE} frames",
        "downsampling": f"{pool}x{pool} average pooling" if pool > 1 else "none",
        "source_files": listing(paths, root),
    }
    c, fh, fw = sources[0].frame_shape
    data = windowed_data(
        name=name, source=f"SEVIR VIL ({root}): {len(vil)} events, {fh}x{fw}, {IN_LEN} -> "
                          f"{OUT_LEN} frames 5 min apart",
        sources=sources, windows=windows, in_len=IN_LEN, out_len=OUT_LEN,
        normalization=normalization, n_val=n_val, n_test=n_test,
        files={"catalog": catalog_path}, details=details)
    data.scoring = {"thresholds": {"values": list(THRESHOLDS), "unit": VIL_UNIT,
                                   "source": THRESHOLDS_SOURCE}}
    return data


@register_dataset("sevir", shape="1 x 384 x 384", frames=f"{IN_LEN} -> {OUT_LEN}",
                  source="SEVIR VIL storm events (HDF5 + CATALOG.csv), split by date as "
                         "Earthformer / PredBench",
                  fixed={"in_len": IN_LEN, "out_len": OUT_LEN, "frame_size": 384})
def sevir(data_root=None, n_val=None, n_test=None, **_ignored):
    return sevir_dataset("sevir", 1, data_root, n_val, n_test)


@register_dataset("sevir-128", shape="1 x 128 x 128", frames=f"{IN_LEN} -> {OUT_LEN}",
                  source="SEVIR VIL average-pooled 3x3 to 128x128 (same events and split)",
                  fixed={"in_len": IN_LEN, "out_len": OUT_LEN, "frame_size": 128})
def sevir_128(data_root=None, n_val=None, n_test=None, **_ignored):
    return sevir_dataset("sevir-128", 3, data_root, n_val, n_test)
