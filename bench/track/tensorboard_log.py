"""TensorBoard: event files in ``RESULTS/tensorboard/<run name>__<run id>/`` (through
``torch.utils.tensorboard``); a resumed run writes to the same folder, and events of the earlier
part logged after its checkpoint are purged (``purge_step``), so each step is shown once."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import RunInfo


class TensorBoardBackend:
    def __init__(self):
        self.writer = None

    def start(self, run: RunInfo, previous: dict | None, resume_step: int) -> dict:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = Path(previous["log_dir"]) if previous else \
            Path(run.folder) / "tensorboard" / f"{run.name}__{run.run_id}"
        # events an earlier part logged after its checkpoint are dropped (TensorBoard keeps steps
        # below purge_step); the checkpoint had done resume_step iterations
        self.writer = SummaryWriter(str(log_dir), purge_step=resume_step + 1 if previous else None)
        return {"log_dir": str(log_dir)}

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)

    def log_images(self, images: dict[str, np.ndarray], step: int) -> None:
        for tag, image in images.items():
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def log_hparams(self, params: dict, metrics: list[str]) -> None:
        """The HParams dashboard's session (in the run's own folder, not a sub-run as
        ``SummaryWriter.add_hparams`` makes); its metrics are the run's scalars of those tags."""
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(params, dict.fromkeys(metrics, 0.0)):
            self.writer.file_writer.add_summary(summary)

    def finish(self, status: str) -> None:
        self.writer.close()


def create() -> TensorBoardBackend:
    import torch.utils.tensorboard  # noqa: F401  (fails here, not mid-run, when not installed)

    return TensorBoardBackend()
