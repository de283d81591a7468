"""The description of a sequence dataset from files (its TOML file, README 'Your own data')."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from ..core.names import safe_component
from .layouts import check_layout

FORMATS = ("hdf5", "npy", "npz", "predrnn")


@dataclass
class SequenceFileConfig:
    """A dataset description, as in its TOML file (see README 'Your own data')."""

    name: str
    path: str | None = None  # one file, split by sequence
    paths: dict[str, str] = field(default_factory=dict)  # or {"train": ..., "val": ..., "test": ...}
    format: str = "auto"
    key: str | None = None
    layout: str | None = None  # NTCHW, TCHW, NTHW, THW, NTHWC, THWC (default: by rank)
    table: str | None = None
    in_len: int = 10
    out_len: int = 10
    stride: int = 1  # training windows start every `stride` frames
    eval_stride: int | None = None  # validation/test windows (default: in_len + out_len)
    segment_length: int = 0  # cut sequences into segments of this many frames first (0: no)
    split: dict = field(default_factory=dict)  # method ordered|shuffled, val, test, seed
    normalize: dict = field(default_factory=dict)  # mode minmax|range|none, range, per_channel
    # skill-score thresholds (CSI, POD, ...) in the file's units, e.g. [16, 74, 133] for radar
    thresholds: list | None = None
    source: str = ""  # free text for describe()
    base_dir: str = "."  # relative paths are resolved against this (the TOML file's folder)

    def __post_init__(self):
        safe_component(self.name, "dataset name")  # it names the results folder
        if (self.path is None) == (not self.paths):
            raise ValueError(f"dataset {self.name!r}: give either 'path' or a [paths] table "
                             "with train (and optionally val) and test")
        if self.paths and not {"train", "test"} <= set(self.paths) <= {"train", "val", "test"}:
            raise ValueError(f"dataset {self.name!r}: [paths] needs train and test (val "
                             f"optional); got {sorted(self.paths)}")
        if self.format not in ("auto", *FORMATS):
            raise ValueError(f"dataset {self.name!r}: format must be auto or one of "
                             f"{', '.join(FORMATS)}; got {self.format!r}")
        check_layout(self.layout, f"dataset {self.name!r}")
        for name, least in (("in_len", 1), ("out_len", 1), ("stride", 1),
                            ("segment_length", 0)):
            _check_int(f"{self.name}: {name}", getattr(self, name), least)
        if self.eval_stride is not None:
            _check_int(f"{self.name}: eval_stride", self.eval_stride, 1)
        if self.thresholds is not None:
            _check_thresholds(self.name, self.thresholds)
        unknown = set(self.split) - {"method", "val", "test", "seed"}
        unknown |= {f"normalize.{k}" for k in set(self.normalize) - {"mode", "range",
                                                                     "per_channel"}}
        if unknown:
            raise ValueError(f"dataset {self.name!r}: unknown option(s) {sorted(unknown)}")

    @property
    def seq_len(self) -> int:
        return self.in_len + self.out_len

    def resolve(self, path: str) -> Path:
        return (Path(self.base_dir) / Path(path).expanduser()).resolve()


def read_config(path: str | os.PathLike) -> SequenceFileConfig:
    """A :class:`SequenceFileConfig` from a TOML file (relative paths: from its folder)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML: {error}") from None
    known = set(SequenceFileConfig.__dataclass_fields__) - {"base_dir"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    if "name" not in raw:
        raise ValueError(f"{path}: 'name' is required (it names the results folder)")
    return SequenceFileConfig(**raw, base_dir=str(path.resolve().parent))


def _check_int(what: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{what} must be an integer >= {least}, got {value!r}")


def _check_thresholds(name: str, values) -> None:
    numbers = isinstance(values, list) and values and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in values)
    if not numbers or values != sorted(set(values)):
        raise ValueError(f"dataset {name!r}: thresholds must be a non-empty list of distinct, "
                         f"increasing finite numbers in the file's units (e.g. [16, 74, 133]); "
                         f"got {values!r}")
