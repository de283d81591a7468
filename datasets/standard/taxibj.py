"""TaxiBJ crowd flows, read from OpenSTL's ``taxibj/dataset.npz`` (the file people download).

Facts and their sources:

- File and keys: ``DATA_ROOT/taxibj/dataset.npz`` with ``X_train``, ``Y_train``, ``X_test``,
  ``Y_test`` (OpenSTL ``openstl/datasets/dataloader_taxibj.py``), each ``[N, T, 2, 32, 32]``:
  inflow and outflow on a 32 x 32 grid of Beijing (Zhang et al., ST-ResNet, 2017), 4 input
  and 4 output frames (OpenSTL asserts ``X.shape[1] == pre_seq_length`` with 4 -> 4 in its
  TaxiBJ configs).
- Values: in [-1, 1] as stored (ST-ResNet's min-max scaling); OpenSTL maps them with
  ``(x + 1) / 2``, here ``offset = -1``, ``scale = 2`` (the same map). OpenSTL's TaxiBJ table
  reports metrics on that [0, 1] scale (its loader sets mean 0, std 1).
- Units: inflow and outflow count the taxis entering and leaving a grid cell in a 30-minute
  interval (ST-ResNet). ST-ResNet scaled them with ``MinMaxNormalization`` (min and max of the
  flows, to [-1, 1]); the min is 0 and the max 1292 (the largest flow of the four
  ``BJ13``-``BJ16`` ``InOut`` files, found in BJ14). The npz does not store them, so the reader
  checks them on the file: when ``(x + 1) / 2 * 1292`` of its first samples are whole numbers
  (flows are counts), ``normalization.data_units`` declares ``taxis/30 min`` with
  ``flow = x01 * 1292`` and the report shows RMSE and MAE in taxis per 30 minutes (ST-ResNet's
  unit); otherwise no unit is declared and ``details.flow_units`` says why.
- Split: train / test as in the file. OpenSTL validates on the test set; here validation is
  the last 10% of the training samples (in file order, which is time order), and the
  ``in + out`` samples just before it are left out of training so that no validation frame
  sits in a training window (consecutive samples overlap in time).
- Reading: the arrays are memory-mapped when stored uncompressed (``np.savez``); a compressed
  member would have to be read whole, and ``storage`` in the record says which happened.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.npy import npz_memmap, npz_names
from ..core.windows import unit_windows
from ..registry import register_dataset
from .common import (
    data_units,
    need_data_root,
    normalization_record,
    require,
    windowed_data,
)

IN_LEN, OUT_LEN = 4, 4
VAL_FRACTION = 0.1
KEYS = ("X_train", "Y_train", "X_test", "Y_test")
GET_FROM = ("OpenSTL's TaxiBJ download (github.com/chengtan9907/OpenSTL, docs: "
            "'Prepare datasets', tools/prepare_data/download_taxibj.sh)")
LAYOUT = "DIR/taxibj/dataset.npz with X_train, Y_train, X_test, Y_test"
FLOW_MIN, FLOW_MAX = 0.0, 1292.0  # ST-ResNet's min-max scaling of the TaxiBJ flows
FLOW_UNIT = "taxis/30 min"
FLOW_CHECK_SAMPLES = 4  # samples whose values must be whole flows once unscaled


class TaxiBJPart:
    """Samples ``i`` of one part: frames ``X[i]`` then ``Y[i]`` (``[8, 2, 32, 32]``)."""

    def __init__(self, path: Path, x_key: str, y_key: str):
        self.path, self.keys = path, (x_key, y_key)
        self.x, self.y, self.storage = _array(path, x_key), _array(path, y_key), "memory-mapped"
        if not (isinstance(self.x, np.memmap) and isinstance(self.y, np.memmap)):
            self.storage = "read whole (compressed .npz member)"
        if self.x.ndim != 5 or self.x.shape[0] != self.y.shape[0] or \
                self.x.shape[2:] != self.y.shape[2:]:
            raise ValueError(f"{path}: {x_key} {self.x.shape} and {y_key} {self.y.shape} must "
                             "be [N, T, C, H, W] with the same N, C, H, W")
        self.in_len, self.out_len = self.x.shape[1], self.y.shape[1]
        self.lengths = [self.in_len + self.out_len] * self.x.shape[0]
        self.frame_shape = tuple(int(n) for n in self.x.shape[2:])
        self.dtype = self.x.dtype

    def __len__(self) -> int:
        return len(self.lengths)

    def read(self, seq: int, start: int, stop: int) -> np.ndarray:
        frames = np.concatenate([self.x[seq], self.y[seq]])
        return frames[start:stop]


def flow_units(part: TaxiBJPart) -> tuple[dict | None, str]:
    """The flow units if the file's values are whole flows scaled by ST-ResNet's min-max."""
    sample = np.asarray(part.x[:FLOW_CHECK_SAMPLES], np.float64)
    flows = (sample + 1) / 2 * (FLOW_MAX - FLOW_MIN) + FLOW_MIN
    worst = float(np.abs(flows - np.round(flows)).max())
    if worst > 1e-3:  # float32 storage leaves at most ~4e-5
        return None, (f"not declared: (x + 1) / 2 * {FLOW_MAX:g} of the first "
                      f"{len(sample)} training samples is not a whole number of taxis (off by up "
                      f"to {worst:.3g}), so the file is not ST-ResNet's scaling of the flows")
    units = data_units(
        FLOW_UNIT, FLOW_MAX - FLOW_MIN, FLOW_MIN,
        source=f"ST-ResNet's min-max scaling of TaxiBJ (min {FLOW_MIN:g}, max {FLOW_MAX:g}: the "
               "largest flow of the BJ13-BJ16 InOut files); flows = x01 * "
               f"{FLOW_MAX - FLOW_MIN:g}, checked on the file: whole numbers of taxis")
    return units, (f"declared: the first {len(sample)} training samples unscale to whole "
                   f"numbers of taxis (within {worst:.1g})")


def _array(path: Path, key: str) -> np.ndarray:
    names = npz_names(path)
    if key not in names:
        raise ValueError(f"{path}: no array {key!r}; it holds {names} (expected "
                         f"{', '.join(KEYS)})")
    array = npz_memmap(path, key)
    if array is None:
        with np.load(path, allow_pickle=False) as npz:
            array = npz[key]
    return array


@register_dataset("taxibj", shape="2 x 32 x 32", frames=f"{IN_LEN} -> {OUT_LEN}",
                  source="TaxiBJ crowd inflow/outflow, OpenSTL's taxibj/dataset.npz "
                         "(train/test as in the file, [-1, 1] -> [0, 1])",
                  fixed={"in_len": IN_LEN, "out_len": OUT_LEN, "frame_size": 32})
def taxibj(data_root: str | None = None, n_val: int | None = None, n_test: int | None = None,
           **_ignored):
    root = need_data_root(data_root, "taxibj", LAYOUT, GET_FROM)
    path = require(root / "taxibj" / "dataset.npz", "taxibj", LAYOUT, GET_FROM)
    train, test = TaxiBJPart(path, "X_train", "Y_train"), TaxiBJPart(path, "X_test", "Y_test")
    for part in (train, test):
        if (part.in_len, part.out_len) != (IN_LEN, OUT_LEN):
            raise ValueError(f"{path}: {part.keys} hold {part.in_len} -> {part.out_len} frames; "
                             f"TaxiBJ is {IN_LEN} -> {OUT_LEN}")
    n = len(train)
    n_val_samples = max(1, round(VAL_FRACTION * n))
    gap = IN_LEN + OUT_LEN
    n_train = n - n_val_samples - gap
    if n_train < 1:
        raise ValueError(f"{path}: {n} training samples are too few to hold out validation")
    ids = {"train": np.arange(n_train), "val": np.arange(n - n_val_samples, n),
           "test": len(train) + np.arange(len(test))}  # global ids: train part, then test part
    windows = {k: unit_windows([(i, 0, gap) for i in v.tolist()], gap, gap)  # one per sample
               for k, v in ids.items()}
    physical, flow_note = flow_units(train)
    normalization = normalization_record(
        -1.0, 2.0, "fixed: [-1, 1] -> [0, 1], x01 = (x + 1) / 2",
        units="the file's [-1, 1] values (ST-ResNet min-max scaled crowd flow)",
        source="OpenSTL dataloader_taxibj.py: (X + 1) / 2", physical=physical)
    details = {
        "publisher_layout": LAYOUT, "storage": sorted({train.storage, test.storage}),
        "dtype": str(train.dtype), "flow_units": flow_note,
        "split_rule": (f"train/test as in the file ({n} / {len(test)} samples); validation: "
                       f"the last {n_val_samples} training samples, the {gap} before them "
                       "unused, so no validation frame is in a training window"),
        "splits": {"train": f"X_train/Y_train 0-{n_train - 1}",
                   "val": f"X_train/Y_train {n - n_val_samples}-{n - 1}",
                   "test": f"X_test/Y_test 0-{len(test) - 1}"},
    }
    return windowed_data(
        name="taxibj", source=f"TaxiBJ ({path}): OpenSTL's preprocessed file, {IN_LEN} -> "
                              f"{OUT_LEN} frames of 2 x 32 x 32 flows",
        sources=[train, test], windows=windows, in_len=IN_LEN, out_len=OUT_LEN,
        normalization=normalization, n_val=n_val, n_test=n_test, files={"npz": path},
        details=details)
