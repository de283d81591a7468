"""Weights & Biases: one W&B run per cell, id kept for resumption (``resume="allow"``).

Where and how it logs is W&B's own settings: ``WANDB_MODE=offline`` writes the run below
``WANDB_DIR`` (default: the results folder) for ``wandb sync`` later; the project is
``WANDB_PROJECT`` (default ``stbench``). Offline, a resumed cell writes a second folder with the
same run id, which ``wandb sync`` appends to the one run."""
from __future__ import annotations

import os

import numpy as np

from .base import RunInfo

PROJECT = "stbench"


class WandbBackend:
    def __init__(self, wandb):
        self.wandb, self.run = wandb, None

    def start(self, run: RunInfo, previous: dict | None, resume_step: int) -> dict:
        run_id = previous["id"] if previous else run.run_id
        self.run = self.wandb.init(
            project=os.environ.get("WANDB_PROJECT", PROJECT), name=run.name, id=run_id,
            resume="allow", dir=None if os.environ.get("WANDB_DIR") else str(run.folder),
            group=f"{run.tags['dataset']}/{run.tags['preset']}", config=run.params,
            tags=[f"{k}={v}" for k, v in run.tags.items()],
            settings=self.wandb.Settings(console="off", quiet=True))
        return {"id": run_id, "project": self.run.project, "dir": str(self.run.dir)}

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        self.run.log(dict(scalars), step=step)

    def log_images(self, images: dict[str, np.ndarray], step: int) -> None:
        self.run.log({tag: self.wandb.Image(image) for tag, image in images.items()}, step=step)

    def log_hparams(self, params: dict, metrics: list[str]) -> None:
        pass  # given to wandb.init as the run's config

    def finish(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "finished" else 1)


def create() -> WandbBackend:
    import wandb

    return WandbBackend(wandb)
