"""What a tracker backend does, and the run it logs.

A backend (one per tracker and cell) is driven in this order: ``start`` once, then any number of
``log_scalars``, ``log_images`` and (when fresh) ``log_hparams``, then ``finish``. ``start``
returns the backend's identity of the run (JSON: a run id, a log folder); passed back as
``previous`` on a later start, it continues that run instead of starting another.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

STATUSES = ("finished", "failed", "killed")  # how a run ends: done, failed, interrupted


@dataclass
class RunInfo:
    """One cell's run: ``name`` (model, seed, dataset, preset, config hash), ``run_id`` (kept
    across resumptions), ``folder`` (the results folder, for local log files), ``params`` (the
    cell's configuration, flat: the run's hyperparameters), ``tags`` (the cell in a few words)."""

    name: str
    run_id: str
    folder: Path
    params: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)


class Backend(Protocol):
    def start(self, run: RunInfo, previous: dict | None, resume_step: int) -> dict:
        """Starts ``run`` (or continues it: ``previous``, this backend's identity from an earlier
        part, and ``resume_step``, the iterations that part's checkpoint had done); returns the
        identity to keep."""

    def log_scalars(self, scalars: dict[str, float], step: int) -> None: ...

    def log_images(self, images: dict[str, np.ndarray], step: int) -> None:
        """``images``: tag -> ``[H, W, 3]`` uint8."""

    def log_hparams(self, params: dict, metrics: list[str]) -> None:
        """The run's configuration (flat: str, int, float or bool values) and the names of the
        metrics it will report at the end."""

    def finish(self, status: str) -> None:
        """``status``: one of STATUSES."""
