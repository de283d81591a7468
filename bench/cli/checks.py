"""Checks of command-line values that several commands share, made before any work."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import models


def model_patterns(names: list[str]) -> list[str]:
    """``--models a,b`` is one (unknown) name: say that names are space-separated."""
    if any("," in name for name in names):
        split = [part for name in names for part in name.split(",") if part]
        raise ValueError(f"--models takes space-separated names, not a comma-separated list: got "
                         f"{' '.join(names)!r}; use: --models {' '.join(split)}")
    return names


def check_available(names: list[str]) -> None:
    """Every model in ``names`` can run here: one error naming each whose optional packages are
    missing, with the command that installs them (models.unavailable); before any work."""
    missing = {name: why for name in names if (why := models.unavailable(name))}
    if missing:
        raise ValueError("; ".join(f"model {name!r} {why}" for name, why in missing.items())
                         + " (or leave it out of --models)")


def check_dataset_config(path: str) -> None:
    where = Path(path).expanduser().resolve()
    if not where.is_file():
        what = "is a folder, not a TOML file" if where.is_dir() else "not found"
        raise ValueError(f"dataset config {path!r} {what} (looked at {where})")


def check_writable(folder: Path) -> None:
    """``folder``, or its nearest existing parent when it does not exist yet, takes a new file:
    a probe file is written and removed (permission bits can lie: a ``/proc`` path or a
    read-only mount passes ``os.access``, then fails on the first write)."""
    probe = Path(os.path.abspath(folder))
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"output folder {str(folder)!r} cannot be written ({probe} is not a "
                         "folder)")
    try:
        handle, name = tempfile.mkstemp(prefix=".write-probe-", dir=probe)
        os.close(handle)
        os.unlink(name)
    except OSError as error:
        raise ValueError(f"output folder {str(folder)!r} cannot be written (a new file in "
                         f"{probe} fails: {error.strerror or error})") from None
