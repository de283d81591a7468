"""The dataset registry: register a builder by name, list, build by name.

A builder takes keyword options (the harness passes ``in_len``, ``out_len``, ``frame_size``,
``digits_per_clip``, ``n_val``, ``n_test``, ``data_root``, ``cache_dir``) and uses those that
apply to it. A dataset described by a TOML file is registered by
:func:`datasets.files.register.register_config`.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from .core.sequence_data import SequenceData


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    build: Callable[..., SequenceData]
    shape: str  # "C x H x W" for listings
    frames: str  # "in -> out" for listings
    source: str
    # DataConfig fields this dataset fixes (e.g. its own in_len/out_len), so records say so.
    fixed: dict = field(default_factory=dict)
    origin: str = ""  # module or TOML file that registered it


_REGISTRY: dict[str, DatasetSpec] = {}


def register_dataset(name: str, *, shape: str, frames: str, source: str,
                     fixed: dict | None = None, origin: str | None = None):
    """Decorator: register ``build(**options) -> SequenceData`` under ``name``."""

    def decorate(build: Callable[..., SequenceData]) -> Callable[..., SequenceData]:
        where = origin or build.__module__
        existing = _REGISTRY.get(name)
        if existing is not None and existing.origin != where:
            raise ValueError(f"dataset name {name!r} is registered twice: by {existing.origin} "
                             f"and {where}")
        _REGISTRY[name] = DatasetSpec(name, build, shape, frames, source, dict(fixed or {}),
                                      where)
        return build

    return decorate


class UnknownDatasetError(KeyError):
    """An unknown dataset name; the message lists the closest registered names."""

    def __str__(self) -> str:
        return str(self.args[0])


def list_datasets() -> list[str]:
    return sorted(_REGISTRY)


def get_dataset(name: str) -> DatasetSpec:
    if name not in _REGISTRY:
        known = sorted(_REGISTRY)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownDatasetError(f"unknown dataset {name!r}{hint or ';'} known: {', '.join(known)} "
                                  "(or describe your own with --dataset-config FILE.toml)")
    return _REGISTRY[name]


def build_dataset(name: str, **options) -> SequenceData:
    """Build the registered dataset ``name``; options that do not apply to it are ignored."""
    return get_dataset(name).build(**options)


def datasets_table() -> str:
    """name, shape, frames in -> out and source of every registered dataset."""
    rows = [(s.name, s.shape, s.frames, s.source) for s in map(get_dataset, list_datasets())]
    head = ("name", "shape (C x H x W)", "frames in -> out", "source")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}"
                     for r in [head, *rows])
