"""MLflow: one MLflow run per cell (``MlflowClient``: no global active run), its id kept for
resumption. The tracking URI is ``MLFLOW_TRACKING_URI`` when set, else an SQLite file in the
results folder (``mlflow.db``, artifacts in ``mlartifacts/``: MLflow's recommended local
store); the experiment is ``MLFLOW_EXPERIMENT_NAME``, else ``stbench <dataset> <preset>``."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from .base import STATUSES, RunInfo

PARAMS_PER_CALL = 100  # MLflow's limit of parameters in one log_batch
STATUS = dict(zip(STATUSES, ("FINISHED", "FAILED", "KILLED"), strict=True))


def default_uri(folder: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(folder).resolve() / 'mlflow.db'}"


class MlflowBackend:
    def __init__(self, mlflow):
        self.mlflow, self.client, self.run_id = mlflow, None, None

    def start(self, run: RunInfo, previous: dict | None, resume_step: int) -> dict:
        uri = previous["tracking_uri"] if previous else default_uri(run.folder)
        self.client = self.mlflow.tracking.MlflowClient(tracking_uri=uri)
        if previous:
            self.run_id = previous["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            tags = {**{k: str(v) for k, v in run.tags.items()}, "stbench.run_id": run.run_id}
            self.run_id = self.client.create_run(self._experiment(run, uri), run_name=run.name,
                                                 tags=tags).info.run_id
        return {"run_id": self.run_id, "tracking_uri": uri}

    def _experiment(self, run: RunInfo, uri: str) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or \
            f"stbench {run.tags['dataset']} {run.tags['preset']}"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        local = uri.startswith("sqlite:") and not os.environ.get("MLFLOW_TRACKING_URI")
        artifacts = (Path(run.folder).resolve() / "mlartifacts").as_uri() if local else None
        return self.client.create_experiment(name, artifact_location=artifacts)

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        stamp = int(time.time() * 1000)
        metrics = [self.mlflow.entities.Metric(k, float(v), stamp, step) for k, v in scalars.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def log_images(self, images: dict[str, np.ndarray], step: int) -> None:
        for tag, image in images.items():
            self.client.log_image(self.run_id, image, key=tag.replace("/", "."), step=step)

    def log_hparams(self, params: dict, metrics: list[str]) -> None:
        items = [self.mlflow.entities.Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=items[i:i + PARAMS_PER_CALL])

    def finish(self, status: str) -> None:
        self.client.set_terminated(self.run_id, STATUS[status])


def create() -> MlflowBackend:
    import mlflow
    import mlflow.entities
    import mlflow.tracking

    return MlflowBackend(mlflow)
