"""The cost of each model configuration a grid runs: measured once (bench.cost.profiling) or read
back from the store's cost cache, each cell's time estimate from it (also under a budget), the
grid's estimate lines, and the check of a measured cost against the training that followed."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

import models
from datasets import safe_component

from ..cost.estimate import cell_estimate, estimate_lines, speed_ratio
from ..cost.profiling import profile_model
from ..runtime import distributed
from ..runtime import files as atomic
from ..runtime.clock import duration
from ..runtime.memory import free_memory
from ..train.budget import plan_budget
from .records import keep_traceback
from .request import RunRequest

LOAD_RATIO = 2.0  # training vs profiled iteration time beyond which a measurement is distrusted


def cost_cache_path(folder: Path, name: str, config_hash: str) -> Path:
    """Where a model configuration's measured cost is kept for later runs of the same store."""
    return folder / "cost_cache" / f"{safe_component(name, 'model name')}__{config_hash}.json"


def measure_costs(pending: list[dict], request: RunRequest, data, folder: Path, log) -> dict:
    """The cost of each model configuration still to run: measured once (whatever the number of
    seeds), or read back from an earlier run on the same kind of device with the same precision.
    Each record gets its time estimate from it. Returns {(model, config hash): cost or the
    exception}."""
    costs = {}
    for record in pending:
        name = record["model"]
        cell = request.for_model(name)  # the model's recipe, if the preset has recipes
        key = (name, record["config_hash"])
        if key not in costs:
            cache = cost_cache_path(folder, name, record["config_hash"])
            costs[key] = None if cell.remeasure or cell.rerun else cached_cost(cache, record)
            if costs[key] is not None:
                log(f"cost of {name}: measured by an earlier run on this kind of device ({cache}; "
                    "--remeasure measures again)")
            else:
                costs[key] = profile(name, record, cell, data, log)
                if not isinstance(costs[key], Exception):
                    cache_cost(cache, record, costs[key], log)
        if not isinstance(costs[key], Exception) and not cell.profile_only:
            record["estimate"] = cell_estimate(costs[key], cell.preset, len(data.val),
                                               len(data.test))
            if cell.budget is not None:
                record["estimate"] = budget_estimate(record["estimate"], cell, costs[key])
    return costs


def log_estimates(pending: list[dict], costs: dict, log) -> None:
    """The grid's time estimate, cell by cell and in all (bench.cost.estimate), before training."""
    estimates = {f"{r['model']} seed {r['seed']}": r["estimate"] for r in pending
                 if r["estimate"] is not None}
    if not estimates:
        return
    rates = [c["conv_peak_tflops"] for c in costs.values()
             if isinstance(c, dict) and c.get("conv_peak_tflops")]
    for line in estimate_lines(estimates, pending[0]["device_name"], max(rates) if rates else None):
        log(line)


def check_cost(record: dict, folder: Path, log, ratios: dict) -> None:
    """After a cell trained: how its measured iteration time compares with the profile's
    (``ratios[model]``, for the refreshed estimate). More than ``LOAD_RATIO`` apart either way,
    one of the two was measured on a busy machine: the cost-cache entry is dropped (the next run
    profiles again) and a line says so. Not under torchrun, where training runs at N ranks'
    per-rank batch and the profile at the global batch on one device."""
    ratio = speed_ratio(record)
    if ratio is None or record["model"] in ratios or distributed.is_distributed():
        return  # a model's first trained cell decides
    ratios[record["model"]] = ratio
    if 1 / LOAD_RATIO <= ratio <= LOAD_RATIO:
        return
    cache = cost_cache_path(folder, record["model"], record["config_hash"])
    cache.unlink(missing_ok=True)
    log(f"   {record['model']}: training took {record['train']['iteration_s']:.3g} s per "
        f"iteration, the cost profile {record['estimate']['iteration_s']:.3g} s ({ratio:.2g}x): "
        "the machine was probably busy while one of them was measured (the profile, when "
        f"training ran faster); its cached cost is dropped ({cache}), the next run measures again")


def budget_estimate(estimate: dict, request: RunRequest, cost: dict) -> dict:
    """The training part of an estimate under a budget: its iterations at the measured rate."""
    if not estimate["iteration_s"]:
        return estimate
    try:
        plan = plan_budget(request.budget, request.preset.train, cost)
    except ValueError:
        return estimate  # the cell records the error when it runs
    iterations = plan.estimated_iterations or 0
    train_s = plan.amount if plan.kind == "time" else iterations * estimate["iteration_s"]
    eval_s = estimate["eval_s"]
    return {**estimate, "iterations": iterations, "train_s": train_s,
            "total_s": train_s + eval_s}


def profile(name: str, record: dict, request: RunRequest, data, log):
    """The measured cost of ``record``'s model (with ``profile_s``, the time measuring took), or
    the exception that stopped it, its traceback kept (the cell records it when it runs)."""
    started = time.perf_counter()
    try:
        torch.manual_seed(record["seed"])
        model = models.create_model(name, **record["config"]["model"])
        cfg = request.preset.train
        cost = profile_model(model, data, cfg, request.device, cfg.batch_size,
                             request.preset.profile_repeats,
                             log=lambda what: log(f"cost of {name}: {what}"))
    except Exception as error:  # recorded as the cell's failure when the cell runs
        return keep_traceback(error)
    finally:
        model = None  # noqa: F841
        free_memory(request.device)
    cost["profile_s"] = time.perf_counter() - started
    log(f"cost of {name}: measured in {duration(cost['profile_s'])}")
    return cost


def cached_cost(path: Path, record: dict) -> dict | None:
    """The cost cached at ``path`` when it was measured on ``record``'s kind of device at its
    precision, else None (also for a missing or unreadable file)."""
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same_kind = (cached.get("device_kind"), cached.get("precision")) == (
        record["device_kind"], record["precision"])
    return cached.get("cost") if same_kind else None


def cache_cost(path: Path, record: dict, cost: dict, log) -> None:
    """Keep a measured cost for later runs; a cache that cannot be written only costs a
    re-measurement next time, so it is a warning, never the cell's failure."""
    try:
        write_json(path, {"device_kind": record["device_kind"],
                          "precision": record["precision"], "cost": cost})
    except OSError as error:
        log(f"warning: cost of {record['model']} not cached ({path}: "
            f"{error.strerror or error}); the next run measures it again")


def write_json(path: Path, content: dict) -> None:
    """Writes ``content`` as JSON to ``path`` atomically (a cost-cache entry)."""
    atomic.write_text(path, json.dumps(content))
