"""Running one cell of the grid: its model trained (once more from scratch if its best checkpoint
turns out damaged) and tested, with LPIPS when asked for; a failure recorded as the cell's, a
full disk or a lost rank stopping the run."""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from pathlib import Path

import numpy as np
import torch

import models
from datasets import safe_component

from ..evaluation import lpips as lpips_metric
from ..evaluation.domain import dataset_scorers
from ..evaluation.loop import evaluate
from ..runtime import distributed
from ..runtime import files as atomic
from ..runtime.compile import apply_fast_paths, asked_fast_paths
from ..runtime.files import DiskFullError
from ..runtime.memory import free_memory
from ..track.cell import IDENTITY_FILE, CellTracker, run_info
from ..train.budget import plan_budget
from ..train.checkpoint import DamagedCheckpoint
from ..train.divergence import check_finite_metrics
from ..train.loop import Trainer, is_trainable
from .records import failure
from .request import RunRequest, checkpoint_dir

EXAMPLE_CLIPS = 2
FIT_BATCHES = 16  # training batches a model's fit_from_data hook sees (models/base.py)


def load_lpips(data, log) -> tuple:
    """(network or None, note for the records): rank 0 first (it may download AlexNet's weights
    into the torch hub cache), then the other ranks from that cache."""
    network, note = distributed.main_first(lambda: lpips_metric.load(
        data.channels, data.height, data.width, download=distributed.is_main()))
    log(f"LPIPS: {note['definition']}" if network is not None
        else f"LPIPS not computed: {note['unavailable']}")
    return network, note


def run_cell(record: dict, request: RunRequest, data, folder: Path, costs: dict, log,
             lpips: tuple | None = None) -> dict:
    """The outcome of ``record``'s cell, the fields its record gets: status, error, metrics,
    train, cost, failed_step (traceback when failed), wall_s. One model's failure is the cell's;
    a full disk (DiskFullError) or a lost rank (RankLost) stops the run."""
    name = record["model"]
    request = request.for_model(name)  # the model's recipe, if the preset has recipes
    started = time.perf_counter()
    cell = {"status": "ok", "error": None, "metrics": None, "train": None, "failed_step": None}
    try:
        cost = costs[(name, record["config_hash"])]
        if isinstance(cost, Exception):
            raise cost
        cell["cost"] = cost
        # those the cost was measured with (a cost cached before they existed: none if none asked)
        applied = cost.get("fast_paths", None if asked_fast_paths(request.preset.train) else [])
        if not request.profile_only:
            with cell_tracker(record, request, folder, log) as tracker:
                try:
                    cell.update(train_anew_if_damaged(record, request, data, folder, log, cost,
                                                      lpips, tracker))
                finally:  # with --log: the run, also of a failed cell (null: none began)
                    if tracker is not None:
                        cell["tracking"] = tracker.identity
            applied = cell.pop("fast_paths")
        cell["device_settings"] = {**record["device_settings"], "fast_paths": applied}
    except DiskFullError:  # not the cell's failure: the whole run stops, nothing recorded
        free_memory(request.device)
        raise
    except Exception as error:  # one model's failure is recorded; the grid goes on
        if distributed.is_rank_lost(error):  # another rank's stall or death: no model's failure
            raise rank_lost(error, record, folder) from error
        cell.update(failure(error), failed_step=getattr(error, "failed_step", None))
    if cell["status"] != "ok":  # the error (and its frames' tensors) is released by now
        free_memory(request.device)
    # Wall time of every part of the cell: earlier parts of a resumed training included, and
    # for a profile-only cell its measurement (done before the grid's cells run).
    cell["wall_s"] = time.perf_counter() - started + (cell["train"] or {}).get("earlier_parts_s", 0.0)
    if request.profile_only:
        cell["wall_s"] += (cell.get("cost") or {}).get("profile_s", 0.0)
    return cell


def cell_tracker(record: dict, request: RunRequest, folder: Path, log):
    """The cell's tracker run (bench.track) when ``--log`` asks for one, on rank 0 alone; else
    a context of None."""
    if not request.log_to or not distributed.is_main():
        return contextlib.nullcontext(None)
    where = checkpoint_dir(folder, record["model"], record["seed"], record["config_hash"])
    return CellTracker(request.log_to, run_info(record, folder), where / IDENTITY_FILE, log)


def train_anew_if_damaged(record: dict, request: RunRequest, data, folder: Path, log, cost,
                          lpips, tracker: CellTracker | None = None) -> dict:
    """Trains and tests the cell's model; if its best.pt turns out damaged at the end (it was
    moved aside, with last.pt), once more from scratch: one bad file costs a re-training, never
    the cell (under torchrun the job stops instead, and a relaunch trains anew)."""
    name, seed = record["model"], record["seed"]
    for attempt in (1, 2):
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = models.create_model(name, **record["config"]["model"])
        try:
            return train_and_test(name, seed, model, request, data, folder,
                                  record["config_hash"], log, cost, lpips, tracker)
        except DamagedCheckpoint:
            if attempt == 2 or distributed.is_distributed():
                raise
            log(f"   {name} seed {seed}: training again from scratch")
    raise AssertionError("unreachable")  # pragma: no cover


def rank_lost(error: Exception, record: dict, folder: Path) -> distributed.RankLost:
    """The run-stopping error for a cell whose collective lost a rank: where, and what resumes."""
    name, seed, step = record["model"], record["seed"], getattr(error, "failed_step", None)
    where = f"of {name} seed {seed} " + (f"in training iteration {step + 1}" if step is not None
                                         else "outside the training iterations")
    last = checkpoint_dir(folder, name, seed, record["config_hash"]) / "last.pt"
    return distributed.rank_lost(error, where, last if last.exists() else None)


def train_and_test(name, seed, model, request: RunRequest, data, folder: Path, tag: str,
                   log=print, cost: dict | None = None, lpips: tuple | None = None,
                   tracker: CellTracker | None = None) -> dict:
    """``model`` fitted to the training data (its fit_from_data hook), trained when it has
    parameters (checkpoints under ``checkpoint_dir(folder, name, seed, tag)``), then tested;
    the test's example clips written to ``examples/``; ``tracker`` (or None) is the training's
    hook and gets the test's metrics, the cost and the example clips. Returns {"metrics",
    "train", "fast_paths"} (the fast paths that applied to the model: the Trainer switches them
    on)."""
    cfg = request.preset.train
    training = None
    safe_component(name, "model name")
    if hasattr(model, "fit_from_data"):  # statistics of the training data, e.g. the mean frame
        model.fit_from_data(itertools.islice(
            data.train_batches(cfg.batch_size, seed=seed * 100_003), FIT_BATCHES))
    if is_trainable(model):
        trainer = _trainer(name, seed, model, request, data, checkpoint_dir(folder, name, seed, tag),
                           log, cost, tracker)
        applied = trainer.fast_paths  # the Trainer switched them on
        training = dataclasses.asdict(trainer.fit(progress=request.progress))
    else:
        applied = apply_fast_paths(model, cfg)
    model.to(request.device)
    result = _test(model, request, data, lpips)
    # rank 0's shard starts at the first test clip; a rank whose shard is empty has no examples
    examples, clips = folder / "examples", result.pop("examples", None)
    if tracker is not None:
        tracker.tested(result, clips, cost)
    if distributed.is_main() and clips is not None:
        with atomic.atomic_open(examples / f"{name}__seed{seed}.npz") as handle:
            np.savez_compressed(handle, **clips)
    return {"metrics": result, "train": training, "fast_paths": applied}


def _trainer(name, seed, model, request: RunRequest, data, checkpoints: Path, log, cost,
             tracker: CellTracker | None = None) -> Trainer:
    """The cell's Trainer, its checkpoint folder made ready (set aside under --rerun, a killed
    writer's temporaries removed) and its budget planned."""
    cfg = request.preset.train
    if request.rerun:  # train again from scratch; the earlier run's checkpoints are kept
        aside = distributed.main_only(lambda: atomic.move_aside(checkpoints, "replaced"))
        if aside is not None:
            log(f"   --rerun: training from scratch; the earlier checkpoints are in {aside}")
    # This process holds the cell's claim: a temporary there is a killed writer's leftover.
    distributed.main_only(lambda: atomic.remove_temporaries(checkpoints))
    plan = plan_budget(request.budget, cfg, cost) if request.budget is not None else None
    if plan is not None:
        log(f"   budget {request.budget}: " + (
            f"{plan.iterations} iterations of {plan.flops_per_iteration:.3g} FLOPs"
            if plan.kind == "flops" else f"{plan.iterations} iterations"
            if plan.kind == "steps" else f"about {plan.estimated_iterations} iterations"))
    return Trainer(model, data, cfg, request.device, seed, checkpoints, name=name, log=log,
                   data_parallel=True, budget=plan, hook=tracker)


def _test(model, request: RunRequest, data, lpips: tuple | None) -> dict:
    """The trained model's test metrics (bench.evaluation.loop.evaluate: per frame, per clip, and
    LPIPS or why not when asked for), with ``EXAMPLE_CLIPS`` example clips; all finite."""
    cfg = request.preset.train
    network, lpips_note = lpips or (None, None)
    extra = {"lpips": lpips_metric.metric(network)} if network is not None else None
    result = evaluate(model, data.test, data.in_len, data.out_len, request.device,
                      cfg.eval_batch_size, cfg.amp, keep_examples=EXAMPLE_CLIPS, per_clip=True,
                      extra_metrics=extra, scorers=dataset_scorers(data))
    if lpips_note is not None:  # asked for: how it was computed, or why it was not
        result["lpips_unavailable" if network is None else "lpips_info"] = \
            lpips_note.get("unavailable", lpips_note)
    check_finite_metrics(result)
    return result
