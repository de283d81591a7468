"""The trackers by name, the package each needs, and the check that asked-for ones import."""
from __future__ import annotations

import importlib
import importlib.util

# name -> (backend module in bench.track, the package it imports, how to install it)
TRACKERS = {
    "tensorboard": ("tensorboard_log", "tensorboard", "pip install tensorboard"),
    "wandb": ("wandb_log", "wandb", "pip install wandb"),
    "mlflow": ("mlflow_log", "mlflow", "pip install mlflow"),
}
EXTRA = "pip install '.[track]'"  # all three


def check_names(names: list[str]) -> list[str]:
    """``names`` without repeats; one ValueError naming an unknown one and the known ones."""
    unknown = [name for name in names if name not in TRACKERS]
    if unknown:
        raise ValueError(f"--log {unknown[0]!r}: no such tracker; the trackers are: "
                         f"{', '.join(TRACKERS)}")
    return list(dict.fromkeys(names))


def check_installed(names: list[str]) -> None:
    """One ValueError naming every asked-for tracker whose package is not installed, and the
    command that installs it (before any training)."""
    missing = [name for name in check_names(names) if importlib.util.find_spec(TRACKERS[name][1]) is None]
    if missing:
        commands = "; ".join(f"{name}: {TRACKERS[name][2]}" for name in missing)
        raise ValueError(f"--log {' '.join(missing)}: not installed ({commands}; or all trackers "
                         f"at once: {EXTRA})")


def create(name: str):
    """A new backend of tracker ``name`` (its package imported now)."""
    module = importlib.import_module(f"{__package__}.{TRACKERS[name][0]}")
    return module.create()
