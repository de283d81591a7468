"""One grid cell's tracking: its run named by model, seed, dataset, preset and config hash; the
training loop's hook (``begin``, ``losses``, ``validated``: bench.train.loop.Trainer calls them
on rank 0); the test's metrics, cost and example strips (``tested``); the run ended as the cell
ended (a context manager: finished, failed, or killed by Ctrl-C / SIGTERM).

The run's identity (its id, and each backend's run id or log folder) is written beside the
cell's checkpoints (``IDENTITY_FILE``) when training begins; a resumed cell reads it and
continues the same run. Nothing here fails the cell: a tracker's failure is one warning.
"""
from __future__ import annotations

import json
import numbers
import secrets
from pathlib import Path

from ..runtime import files
from .base import RunInfo
from .fanout import FanOut
from .strips import strips

IDENTITY_FILE = "tracking.json"
EXAMPLE_CLIPS = 2  # validation clips drawn as strips at each validation
TAGS = ("model", "seed", "dataset", "preset", "config_hash")
FINAL_METRICS = ["test/mse", "test/mae", "test/ssim", "test/psnr", "val/mse"]


def run_info(record: dict, folder: Path) -> RunInfo:
    """The run of ``record``'s cell (a grid record: model, seed, dataset, preset, config)."""
    tags = {key: record[key] for key in TAGS}
    name = "__".join([record["model"], f"seed{record['seed']}", record["dataset"],
                      record["preset"], record["config_hash"]])
    return RunInfo(name=name, run_id=secrets.token_hex(6), folder=Path(folder),
                   params={**tags, **flatten(record["config"])}, tags=tags)


def flatten(config: dict, prefix: str = "") -> dict:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}``; values other than str, int, float
    and bool as JSON text."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            plain = isinstance(value, str | bool | numbers.Real) and value is not None
            flat[f"{prefix}{key}"] = value if plain else json.dumps(value)
    return flat


def numbers_of(values: dict, prefix: str, skip: tuple = ()) -> dict[str, float]:
    """The real-number entries of ``values`` (not bools) as scalars ``prefix + key``."""
    return {f"{prefix}{k}": float(v) for k, v in values.items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool) and k not in skip}


class CellTracker:
    examples = EXAMPLE_CLIPS

    def __init__(self, names: list[str], run: RunInfo, identity_path: Path, log=print):
        self.fan, self.run, self.path, self.log = FanOut.create(names, log), run, Path(identity_path), log
        self.started, self.step = False, 0

    # --- the training loop's hook ---
    def begin(self, done: int) -> None:
        """Training begins (``done``: iterations an earlier part's checkpoint had done): starts
        the run, or continues the one this cell's identity file names."""
        self._start(done, persist=True)

    def losses(self, first: int, values: list[float], scalars: dict[str, float]) -> None:
        """Training losses read at one host read: ``values[k]`` is iteration ``first + k``'s
        (steps count iterations done); ``scalars`` (lr, sampling ratio, throughput) at the last."""
        for k, value in enumerate(values):
            self._scalars({"train/loss": value}, first + k)
        self._scalars(scalars, first + len(values) - 1)

    def validated(self, step: int, entry: dict, examples: dict | None) -> None:
        """A validation's history entry (bench.train.plans) and its example clips."""
        scalars = {f"val/{k[4:]}": v for k, v in numbers_of(entry, "").items() if k.startswith("val_")}
        if entry.get("train_loss") is not None:  # the mean since the last validation
            scalars["train/loss_mean"] = float(entry["train_loss"])
        scalars.update(numbers_of(entry, "progress/", skip=("val_mse", "val_ssim", "lr", "train_loss")))
        self._scalars(scalars, step)
        self._images(lambda: strips(examples, "val"), step)

    # --- the cell's end ---
    def tested(self, metrics: dict, examples: dict | None, cost: dict | None) -> None:
        """The test's headline metrics, the cost columns and the test's example strips."""
        self._start(self.step, persist=False)  # a model without training starts its run here
        scalars = numbers_of(metrics.get("headline", {}), "test/")
        scalars.update(numbers_of(cost or {}, "cost/"))
        self._scalars(scalars, self.step)
        self._images(lambda: strips(examples, "test"), self.step)

    @property
    def identity(self) -> dict | None:
        """What the record keeps: the run's id and name and each backend's identity."""
        return {"run_id": self.run.run_id, "name": self.run.name, **self.fan.identity} \
            if self.started else None

    def __enter__(self) -> CellTracker:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.started:
            status = "finished" if kind is None else \
                "killed" if issubclass(kind, KeyboardInterrupt) else "failed"
            self.fan.call("finish", status)

    def _start(self, done: int, persist: bool) -> None:
        if self.started:
            return
        self.started = True
        previous = self._previous() if persist else None
        if previous:
            self.run.run_id = previous["run_id"]
            self.log(f"   tracking: continuing run {self.run.name} ({self.run.run_id}) from "
                     f"iteration {done}")
        self.fan.start(self.run, (previous or {}).get("backends", {}), done)
        if not previous:
            self.fan.call("log_hparams", self.run.params, FINAL_METRICS)
        self.step = done
        if persist and self.fan.backends:
            self._guarded("writing " + str(self.path), lambda: files.write_text(self.path, json.dumps(
                {"run_id": self.run.run_id, "name": self.run.name, "backends": self.fan.identity},
                indent=1)))

    def _previous(self) -> dict | None:
        """The identity an earlier part of this cell wrote, if any (an unreadable one: none)."""
        try:
            return json.loads(self.path.read_text()) if self.path.is_file() else None
        except (OSError, ValueError) as error:
            self.log(f"   warning: {self.path} unreadable ({error}); tracking starts a new run")
            return None

    def _scalars(self, scalars: dict, step: int) -> None:
        self.step = max(self.step, step)
        if scalars:
            self.fan.call("log_scalars", scalars, step)

    def _images(self, build, step: int) -> None:
        images = self._guarded("drawing example strips", build)
        if images:
            self.fan.call("log_images", images, step)

    def _guarded(self, what: str, work):
        """``work()``, or on failure one warning and None (tracking's own work never fails the
        cell)."""
        try:
            return work()
        except Exception as error:
            self.log(f"   warning: tracking: {what} failed ({type(error).__name__}: {error})")
            return None
