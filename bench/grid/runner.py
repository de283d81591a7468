"""Runs the benchmark grid: for each (model, seed) cell, train, evaluate, profile, record."""
from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import models
from datasets import build_dataset

from ..config import OPERATIONAL_OPTIONS, DataConfig, Preset, config_hash
from ..cost.estimate import cell_estimate, estimate_lines, remaining_line, speed_ratio
from ..cost.match import MatchTarget, match_width, size
from ..cost.profiling import profile_model
from ..evaluation import lpips as lpips_metric
from ..evaluation.loop import evaluate
from ..runtime import distributed
from ..runtime import files as atomic
from ..runtime.clock import duration, now
from ..runtime.files import DiskFullError
from ..runtime.memory import free_memory, is_out_of_memory
from ..runtime.precision import describe_precision
from ..runtime.provenance import run_fields
from ..store import ResultsStore, cell_key
from ..train.budget import Budget, plan_budget
from ..train.checkpoint import DamagedCheckpoint
from ..train.divergence import check_finite_metrics
from ..train.loop import Trainer, is_trainable
from ..train.signals import Interrupted, stopped_by
from . import claims
from .checks import safe_component
from .shards import shard_cells

EXAMPLE_CLIPS = 2
CLAIM_POLL_S = 1.0  # how often a run waiting for another's cell looks again
FIT_BATCHES = 16  # training batches a model's fit_from_data hook sees (models/base.py)


@dataclass
class RunRequest:
    models: list[str]
    preset: Preset
    seeds: list[int]
    device: torch.device
    out_root: Path
    data_root: str | None = None
    cache_dir: str = ".cache/datasets"
    model_args: dict = field(default_factory=dict)
    profile_only: bool = False
    progress: bool = True
    shard: tuple[int, int] | None = None  # (i, n): the i-th of n parts of the (model, seed) grid
    rerun: bool = False  # train cells again even when the store has them done (implies remeasure)
    remeasure: bool = False  # profile every model again even when cost_cache/ has its cost
    budget: Budget | None = None  # train every model until this budget is spent (bench.train.budget)
    match: MatchTarget | None = None  # scale every model's width to this size (bench.cost.match)
    reference: str | None = None  # the model the report compares every other with
    lpips: bool = False  # also compute LPIPS (AlexNet) on the test set when it can (bench.evaluation.lpips)


def load_data(data: DataConfig, data_root: str | None, cache_dir: str):
    """The one place the harness builds data: the dataset registry, by name.

    Each dataset takes the options that apply to it (e.g. frame_size and digits_per_clip only
    for mmnist; a TOML-described dataset keeps its own in_len/out_len).
    """
    return build_dataset(
        data.dataset, in_len=data.in_len, out_len=data.out_len, frame_size=data.frame_size,
        digits_per_clip=data.digits_per_clip, n_val=data.n_val, n_test=data.n_test,
        data_root=data_root, cache_dir=cache_dir,
    )


def model_config(name: str, preset: Preset, data, user_args: dict) -> dict:
    """Constructor arguments: the data's shape, the preset's scaling (generic where accepted, then
    the model's own for this preset), then the user's."""
    spec = models.get_spec(name)
    accepted = inspect.signature(spec.build).parameters
    config = {"channels": data.channels, "height": data.height, "width": data.width,
              "in_len": data.in_len, "out_len": data.out_len}
    config.update({k: v for k, v in preset.model_overrides.items() if k in accepted})
    config.update(spec.preset_args.get(preset.name, {}))
    for key, value in user_args.items():
        if key not in accepted:
            raise ValueError(f"model {name!r} takes no argument {key!r}; it takes: "
                             f"{', '.join(accepted)}")
        config[key] = value
    return {k: v for k, v in config.items() if k in accepted}


# The folders a run writes, relative to its results folder (bench.cli.main checks them up front).
RUN_FOLDERS = ("", "cost_cache", "examples", "checkpoints")


def out_folder(out_root: Path, data, preset: Preset) -> Path:
    return Path(out_root) / safe_component(data.name, "dataset name") / preset.name


class GridInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during the grid: the message says where it stopped and how to resume;
    ``signum``: which signal (the exit status is 128 + it, bench.train.loop.exit_code)."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum


def run_grid(request: RunRequest, log=print, data=None) -> tuple[Path, list[dict]]:
    """Runs every cell not already done (of ``request.shard`` only, if set); returns the results
    folder and the new records. ``data``: the dataset if the caller already loaded it.

    First the cost of every model still to run is measured (or read back from an earlier run of
    the same configuration on the same kind of device), and the grid's time estimated from it;
    then each cell trains, is tested and appends its record.

    Under torchrun every rank runs every cell together (data-parallel); rank 0 alone decides
    what is done, measures costs, logs, and appends to the store.
    """
    if data is None:
        data = load_data(request.preset.data, request.data_root, request.cache_dir)
    folder = out_folder(request.out_root, data, request.preset)
    store = ResultsStore(folder)
    log = log if distributed.is_main() else (lambda *args, **kwargs: None)
    matched = match_sizes(request, data, log) if request.match else {}
    pending, recorded = [], store.records()  # read again before each cell is run (_Grid)
    for name, seed in shard_cells(request.models, request.seeds, request.shard):
        record = _base_record(name, seed, request, data, matched.get(name))
        done = distributed.broadcast(None if request.rerun else store.done(cell_key(record),
                                                                           recorded))
        if done:
            log(_skip_line(done, store))
        else:
            pending.append(record)
    # Rank 0 alone profiles (the others would compete for the same cores or bus and skew its
    # timings); the others wait for its costs and estimates.
    costs, estimates = distributed.main_only(lambda: (
        _measure_costs(pending, request, data, folder, log), [r["estimate"] for r in pending]))
    for record, estimate in zip(pending, estimates, strict=True):
        record["estimate"] = estimate
    if not request.profile_only and pending:
        estimates = {f"{r['model']} seed {r['seed']}": r["estimate"] for r in pending
                     if r["estimate"] is not None}
        if estimates:
            rates = [c["conv_peak_tflops"] for c in costs.values()
                     if isinstance(c, dict) and c.get("conv_peak_tflops")]
            for line in estimate_lines(estimates, pending[0]["device_name"],
                                       max(rates) if rates else None):
                log(line)
    lpips = _load_lpips(data, log) if request.lpips and not request.profile_only and pending \
        else None
    grid = _Grid(request, data, folder, store, costs, log, lpips, first_new=len(recorded),
                 pending=pending)
    busy = [record for record in pending if not grid.run(record, wait=False)]
    for record in busy:  # claimed by another live process: wait for it, then run it if need be
        grid.run(record, wait=True)
    return folder, grid.new_records


class _Grid:
    """Runs the grid's cells one by one, each under its claim (bench.grid.claims): a cell another
    live process is running is left for later; once claimed, the store is read again, so a cell
    another process recorded meanwhile is skipped, never recorded twice."""

    def __init__(self, request: RunRequest, data, folder: Path, store: ResultsStore, costs: dict,
                 log, lpips, first_new: int, pending: list[dict]):
        self.request, self.data, self.folder, self.store = request, data, folder, store
        self.costs, self.log, self.lpips = costs, log, lpips
        self.first_new = first_new  # --rerun: only records from this one on count as done
        self.pending = pending  # the grid's cells, for "cell N of M" and the refreshed estimate
        self.new_records: list[dict] = []
        self.ratios: dict = {}  # model -> measured / profiled iteration time

    def run(self, record: dict, wait: bool) -> bool:
        """Runs ``record``'s cell unless another process records it; False: it is busy (only
        when not ``wait``)."""
        claim = self._claim(record, wait)
        if claim is False:
            return False
        try:
            done = distributed.broadcast(self._done(record) if distributed.is_main() else None)
            if done:
                self.log(f"skip {record['model']} seed {record['seed']}: recorded by another "
                         f"run meanwhile ({done['status']}, {done.get('finished_at')}, in "
                         f"{self.store.path})")
            else:
                self._run(record)
        finally:
            if claim is not None and claim is not True:
                claim.release()
        return True

    def _claim(self, record: dict, wait: bool):
        """Rank 0's claim (the others get True), or False when busy and not ``wait``."""
        path, said = claims.claim_path(self.folder, record), False
        while True:
            claim = claims.try_claim(path) if distributed.is_main() else None
            taken = distributed.broadcast(claim if isinstance(claim, str) else True)
            if taken is True:
                return claim if distributed.is_main() else True
            name, seed = record["model"], record["seed"]
            if not wait:
                self.log(f"later {name} seed {seed}: {taken} is running it ({path}); waiting "
                         "for it after the rest of the grid")
                return False
            if not said:
                self.log(f"waiting for {name} seed {seed}: {taken} is running it ({path})")
                said = True
            time.sleep(CLAIM_POLL_S)

    def _done(self, record: dict) -> dict | None:
        """The record that makes running the cell needless: one recorded by another run since
        this grid started (whatever its status: the cell is never recorded twice by concurrent
        runs), or without --rerun an earlier successful one."""
        records, key = self.store.records(), cell_key(record)
        meanwhile = [r for r in records[self.first_new:] if cell_key(r) == key]
        if meanwhile:
            return meanwhile[-1]
        return None if self.request.rerun else self.store.done(key, records)

    def _run(self, record: dict) -> None:
        request, data, log = self.request, self.data, self.log
        name, seed = record["model"], record["seed"]
        number = next(i for i, cell in enumerate(self.pending, 1) if cell is record)
        log(f"== {name} (seed {seed}, preset {request.preset.name}, {data.name}; "
            f"cell {number} of {len(self.pending)})")
        try:
            record.update(_run_cell(record, request, data, self.folder, self.costs, log,
                                    self.lpips))
        except KeyboardInterrupt as stop:
            where = str(stop) if isinstance(stop, Interrupted) else \
                f"{name} seed {seed} stopped{stopped_by(stop)}"
            raise GridInterrupted(f"interrupted: {where}; nothing was recorded for it. Run the same "
                                  "command to resume", getattr(stop, "signum", signal.SIGINT)) from None
        record["finished_at"] = now()
        if distributed.is_main():
            self.store.append(record)
        self.new_records.append(record)
        status = record["status"] if record["status"] == "ok" else f"FAILED: {record['error']}"
        took = f"took {duration(record['wall_s'])}"
        if record["estimate"]:
            took += f", estimated {duration(record['estimate']['total_s'])}"
        log(f"   {name}: {status} ({took})")
        if not request.profile_only:
            _check_cost(record, self.folder, log, self.ratios)
            ran = {id(r) for r in self.new_records}
            line = remaining_line([cell for cell in self.pending[number:] if id(cell) not in ran],
                                  self.ratios)
            if line:
                log(line)
        if record["status"] != "ok" and distributed.is_distributed():
            # The other ranks may be waiting in a collective this one will never join: stop
            # the job (torchrun ends them); a relaunch resumes the grid and retries this cell.
            raise RuntimeError(f"{name} (seed {seed}) failed on rank {distributed.rank()}: "
                               f"{record['error']}; stopping every rank")


def _skip_line(done: dict, store: ResultsStore) -> str:
    """What a skipped cell's record says: where, how (its precision in words) and when."""
    precision = describe_precision(done["precision"]) if done.get("precision") else "not recorded"
    return (f"skip {done['model']} seed {done['seed']}: done on {done['device_name']}, precision "
            f"{precision}, at {done.get('finished_at')}, in {store.path}; --rerun trains it again")


def match_target(request: RunRequest, data) -> float:
    """The size ``--match`` asks for: a number, or the reference model's at this data/preset."""
    target = request.match
    if target.model is None:
        return target.value
    spec = models.get_spec(target.model)
    accepted = inspect.signature(spec.build).parameters
    own = {k: v for k, v in request.model_args.items() if k in accepted}
    value = size(target.by, target.model, model_config(target.model, request.preset, data, own),
                 data.in_len, data.out_len)
    if value <= 0:
        raise ValueError(f"--match {str(target)!r}: {target.model!r} has no {target.by} to match (it "
                         "counts 0); accepted: a model with parameters, or a number")
    return value


def match_sizes(request: RunRequest, data, log=print) -> dict[str, dict]:
    """Per model: the width that brings its size closest to ``request.match`` (bench.cost.match)."""
    target, value = request.match, match_target(request, data)
    unit = "parameters" if target.by == "params" else "FLOPs per test rollout at batch 1"
    log(f"match {target}: target {value:,.0f} {unit}")
    matched = {}
    for name in dict.fromkeys(request.models):
        config = model_config(name, request.preset, data, request.model_args)
        info = match_width(name, config, value, target.by, data.in_len, data.out_len)
        info["target_from"] = target.model or "number"
        matched[name] = info
        if info["scalable"]:
            log(f"   {name}: {info['width_arg']} {info['default_width']} -> {info['width']}, "
                f"{info['achieved']:,.0f} ({info['relative_error']:+.1%})")
        else:
            log(f"   {name}: {info['note']} ({info['achieved']:,.0f})")
    return matched


def _base_record(name: str, seed: int, request: RunRequest, data,
                 matched: dict | None = None) -> dict:
    spec = models.get_spec(name)
    train = dataclasses.asdict(request.preset.train)
    config = {
        "model": model_config(name, request.preset, data, request.model_args),
        "train": {k: v for k, v in train.items() if k not in OPERATIONAL_OPTIONS},
        "data": dataclasses.asdict(request.preset.data),
    }
    # A budget or a size match makes a different cell (a different hash); without them the hash
    # is what it always was.
    if request.budget is not None:
        config["budget"] = request.budget.as_dict()
    if request.lpips:  # a cell tested with LPIPS is another cell than one tested without
        config["eval"] = {"lpips": True}
    if matched is not None:
        config["match"] = request.match.as_dict()
        if matched["scalable"]:
            config["model"][matched["width_arg"]] = matched["width"]
    return {
        "budget": request.budget.as_dict() if request.budget is not None else None,
        "match": matched,
        "mode": "profile" if request.profile_only else "train",
        "model": name, "family": spec.family, "paper": spec.paper,
        "dataset": data.name, "dataset_info": data.describe(), "preset": request.preset.name,
        "seed": seed, "config": config, "config_hash": config_hash(config),
        **run_fields(request.device, request.preset.train),
        "distributed": distributed.describe(request.preset.train.batch_size),
        "estimate": None, "reference": request.reference,
    }


def _measure_costs(pending: list[dict], request: RunRequest, data, folder: Path, log) -> dict:
    """The cost of each model configuration still to run: measured once (whatever the number of
    seeds), or read back from an earlier run on the same kind of device with the same precision.
    Each record gets its time estimate from it. Returns {(model, config hash): cost or the
    exception}."""
    costs = {}
    for record in pending:
        name = record["model"]
        key = (name, record["config_hash"])
        if key not in costs:
            cache = cost_cache_path(folder, name, record["config_hash"])
            costs[key] = None if request.remeasure or request.rerun else _cached_cost(cache, record)
            if costs[key] is not None:
                log(f"cost of {name}: measured by an earlier run on this kind of device ({cache}; "
                    "--remeasure measures again)")
            else:
                costs[key] = _profile(name, record, request, data, log)
                if not isinstance(costs[key], Exception):
                    _cache_cost(cache, record, costs[key], log)
        if not isinstance(costs[key], Exception) and not request.profile_only:
            record["estimate"] = cell_estimate(costs[key], request.preset, len(data.val),
                                               len(data.test))
            if request.budget is not None:
                record["estimate"] = _budget_estimate(record["estimate"], request, costs[key])

    return costs


def cost_cache_path(folder: Path, name: str, config_hash: str) -> Path:
    """Where a model configuration's measured cost is kept for later runs of the same store."""
    return folder / "cost_cache" / f"{safe_component(name, 'model name')}__{config_hash}.json"


LOAD_RATIO = 2.0  # training vs profiled iteration time beyond which a measurement is distrusted


def _check_cost(record: dict, folder: Path, log, ratios: dict) -> None:
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


def _budget_estimate(estimate: dict, request: RunRequest, cost: dict) -> dict:
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


def _profile(name: str, record: dict, request: RunRequest, data, log):
    started = time.perf_counter()
    try:
        torch.manual_seed(record["seed"])
        model = models.create_model(name, **record["config"]["model"])
        cfg = request.preset.train
        cost = profile_model(model, data, cfg, request.device, cfg.batch_size,
                             request.preset.profile_repeats,
                             log=lambda what: log(f"cost of {name}: {what}"))
    except Exception as error:  # recorded as the cell's failure when the cell runs
        error.traceback = traceback.format_exc(limit=8)
        return error
    finally:
        model = None  # noqa: F841
        free_memory(request.device)
    cost["profile_s"] = time.perf_counter() - started
    log(f"cost of {name}: measured in {duration(cost['profile_s'])}")
    return cost


def _cached_cost(path: Path, record: dict) -> dict | None:
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same_kind = (cached.get("device_kind"), cached.get("precision")) == (
        record["device_kind"], record["precision"])
    return cached.get("cost") if same_kind else None


def _cache_cost(path: Path, record: dict, cost: dict, log) -> None:
    """Keep a measured cost for later runs; a cache that cannot be written only costs a
    re-measurement next time, so it is a warning, never the cell's failure."""
    try:
        _write_json(path, {"device_kind": record["device_kind"],
                           "precision": record["precision"], "cost": cost})
    except OSError as error:
        log(f"warning: cost of {record['model']} not cached ({path}: "
            f"{error.strerror or error}); the next run measures it again")


def _write_json(path: Path, content: dict) -> None:
    atomic.write_text(path, json.dumps(content))


def _load_lpips(data, log) -> tuple:
    """(network or None, note for the records): rank 0 first (it may download AlexNet's weights
    into the torch hub cache), then the other ranks from that cache."""
    network, note = distributed.main_first(lambda: lpips_metric.load(
        data.channels, data.height, data.width, download=distributed.is_main()))
    log(f"LPIPS: {note['definition']}" if network is not None
        else f"LPIPS not computed: {note['unavailable']}")
    return network, note


def _run_cell(record: dict, request: RunRequest, data, folder: Path, costs: dict, log,
              lpips: tuple | None = None) -> dict:
    name = record["model"]
    started = time.perf_counter()
    cell = {"status": "ok", "error": None, "metrics": None, "train": None, "failed_step": None}
    try:
        cost = costs[(name, record["config_hash"])]
        if isinstance(cost, Exception):
            raise cost
        cell["cost"] = cost
        if not request.profile_only:
            cell.update(_train_anew_if_damaged(record, request, data, folder, log, cost, lpips))
    except DiskFullError:  # not the cell's failure: the whole run stops, nothing recorded
        free_memory(request.device)
        raise
    except Exception as error:  # one model's failure is recorded; the grid goes on
        if distributed.is_rank_lost(error):  # another rank's stall or death: no model's failure
            raise _rank_lost(error, record, folder) from error
        kind = "out of memory: " if is_out_of_memory(error) else ""
        cell.update(status="failed", error=f"{kind}{type(error).__name__}: {error}",
                    failed_step=getattr(error, "failed_step", None),
                    traceback=getattr(error, "traceback", None) or traceback.format_exc(limit=8))
    if cell["status"] != "ok":  # the error (and its frames' tensors) is released by now
        free_memory(request.device)
    # Wall time of every part of the cell: earlier parts of a resumed training included, and
    # for a profile-only cell its measurement (done before the grid's cells run).
    cell["wall_s"] = time.perf_counter() - started + (cell["train"] or {}).get("earlier_parts_s", 0.0)
    if request.profile_only:
        cell["wall_s"] += (cell.get("cost") or {}).get("profile_s", 0.0)
    return cell


def _train_anew_if_damaged(record: dict, request: RunRequest, data, folder: Path, log, cost,
                           lpips) -> dict:
    """Trains and tests the cell's model; if its best.pt turns out damaged at the end (it was
    moved aside, with last.pt), once more from scratch: one bad file costs a re-training, never
    the cell (under torchrun the job stops instead, and a relaunch trains anew)."""
    name, seed = record["model"], record["seed"]
    for attempt in (1, 2):
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = models.create_model(name, **record["config"]["model"])
        try:
            return _train_and_test(name, seed, model, request, data, folder,
                                   record["config_hash"], log, cost, lpips)
        except DamagedCheckpoint:
            if attempt == 2 or distributed.is_distributed():
                raise
            log(f"   {name} seed {seed}: training again from scratch")
    raise AssertionError("unreachable")  # pragma: no cover


def _rank_lost(error: Exception, record: dict, folder: Path) -> distributed.RankLost:
    """The run-stopping error for a cell whose collective lost a rank: where, and what resumes."""
    name, seed, step = record["model"], record["seed"], getattr(error, "failed_step", None)
    where = f"of {name} seed {seed} " + (f"in training iteration {step + 1}" if step is not None
                                         else "outside the training iterations")
    last = checkpoint_dir(folder, name, seed, record["config_hash"]) / "last.pt"
    return distributed.rank_lost(error, where, last if last.exists() else None)


def checkpoint_dir(folder: Path, name: str, seed: int, tag: str) -> Path:
    """Where a cell keeps last.pt and best.pt. The config hash (``tag``) in the name: a changed
    configuration never resumes another's checkpoint."""
    cell_name = f"{name}__seed{seed}__{safe_component(tag, 'config hash')}"
    return Path(folder) / "checkpoints" / cell_name


def _train_and_test(name, seed, model, request: RunRequest, data, folder: Path, tag: str,
                    log=print, cost: dict | None = None, lpips: tuple | None = None) -> dict:
    cfg, device = request.preset.train, request.device
    training = None
    safe_component(name, "model name")
    if hasattr(model, "fit_from_data"):  # statistics of the training data, e.g. the mean frame
        model.fit_from_data(itertools.islice(
            data.train_batches(cfg.batch_size, seed=seed * 100_003), FIT_BATCHES))
    if is_trainable(model):
        checkpoints = checkpoint_dir(folder, name, seed, tag)
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
        trainer = Trainer(model, data, cfg, device, seed, checkpoints, name=name, log=log,
                          data_parallel=True, budget=plan)
        training = dataclasses.asdict(trainer.fit(progress=request.progress))
    model.to(device)
    network, lpips_note = lpips or (None, None)
    extra = {"lpips": lpips_metric.metric(network)} if network is not None else None
    result = evaluate(model, data.test, data.in_len, data.out_len, device, cfg.eval_batch_size,
                      cfg.amp, keep_examples=EXAMPLE_CLIPS, per_clip=True, extra_metrics=extra)
    if lpips_note is not None:  # asked for: how it was computed, or why it was not
        result["lpips_unavailable" if network is None else "lpips_info"] = \
            lpips_note.get("unavailable", lpips_note)
    check_finite_metrics(result)
    examples, clips = folder / "examples", result.pop("examples")
    if distributed.is_main():  # rank 0's shard starts at the first test clip
        with atomic.atomic_open(examples / f"{name}__seed{seed}.npz") as handle:
            np.savez_compressed(handle, **clips)
    return {"metrics": result, "train": training}
