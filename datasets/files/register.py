"""A dataset described by a TOML file, in the registry under its ``name``."""
from __future__ import annotations

from pathlib import Path

from ..registry import register_dataset
from .config import read_config
from .loading import load_sequence_dataset
from .readers import SequenceSource, format_of


def register_config(path: str | Path) -> str:
    """Register the dataset a TOML file describes under its ``name``; returns the name."""
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
    rel = config.path or config.paths["train"]
    path = config.resolve(rel)
    c, h, w = SequenceSource(path, format_of(path, config.format), config.key, None,
                             config.layout).frame_shape
    return f"{c} x {h} x {w}"
