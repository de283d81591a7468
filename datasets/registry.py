"""The dataset registry: register a builder by name, list, build by name.

A builder takes keyword options (the harness passes ``in_len``, ``out_len``, ``frame_size``,
``digits_per_clip``, ``n_val``, ``n_test``, ``data_root``, ``cache_dir``) and uses those that
apply to it. ``register_config(path)`` registers a dataset described by a TOML file under
its ``name``.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .sequence_data import SequenceData


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


def register_config(path: str | Path) -> str:
    """Register the dataset a TOML file describes under its ``name``; returns the name."""
    from .sequence_files import load_sequence_dataset, read_config

    config = read_config(path)
    frames = f"{config.in_len} -> {config.out_len}"
    try:
        probe = _probe_shape(config)
    except Exception:  # listing must not fail on a file that is not there yet
        probe = "?"

    def build(n_val=None, n_test=None, **_ignored):
        return load_sequence_dataset(config, n_val=n_val, n_test=n_test)

    fixed = {"in_len": config.in_len, "out_len": config.out_len}
    register_dataset(config.name, shape=probe, frames=frames,
                     source=config.source or f"TOML {Path(path)}", fixed=fixed,
                     origin=f"TOML {Path(path).resolve()}")(build)
    return config.name


def _probe_shape(config) -> str:
    from .sequence_files import SequenceSource, _format_of

    rel = config.path or config.paths["train"]
    path = config.resolve(rel)
    c, h, w = SequenceSource(path, _format_of(path, config.format), config.key, None,
                             config.layout).frame_shape
    return f"{c} x {h} x {w}"


def datasets_table() -> str:
    """name, shape, frames in -> out and source of every registered dataset."""
    rows = [(s.name, s.shape, s.frames, s.source) for s in map(get_dataset, list_datasets())]
    head = ("name", "shape (C x H x W)", "frames in -> out", "source")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}"
                     for r in [head, *rows])
