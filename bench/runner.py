"""Runs the benchmark grid: for each (model, seed) cell, train, evaluate, profile, record."""
from __future__ import annotations

import dataclasses
import inspect
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import models
from datasets import build_dataset

from .config import DataConfig, Preset, config_hash
from .evaluate import evaluate
from .profile import profile_model
from .provenance import device_name, git_commit, now, versions
from .reliability import free_memory, is_out_of_memory, safe_component, shard_cells
from .store import ResultsStore
from .train import DivergedError, Trainer, is_trainable

EXAMPLE_CLIPS = 2


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


def out_folder(out_root: Path, data, preset: Preset) -> Path:
    return Path(out_root) / data.name / preset.name


def run_grid(request: RunRequest, log=print, data=None) -> tuple[Path, list[dict]]:
    """Runs every cell not already done (of ``request.shard`` only, if set); returns the results
    folder and the new records. ``data``: the dataset if the caller already loaded it."""
    if data is None:
        data = load_data(request.preset.data, request.data_root, request.cache_dir)
    folder = out_folder(request.out_root, data, request.preset)
    store = ResultsStore(folder)
    new_records = []
    for name, seed in shard_cells(request.models, request.seeds, request.shard):
        record = _base_record(name, seed, request, data)
        if store.done(_key(record)):
            log(f"skip {name} seed {seed}: already recorded in {store.path}")
            continue
        log(f"== {name} (seed {seed}, preset {request.preset.name}, {data.name})")
        record.update(_run_cell(name, seed, record["config"]["model"], request, data, folder,
                                tag=record["config_hash"]))
        record["finished_at"] = now()
        store.append(record)
        new_records.append(record)
        status = record["status"] if record["status"] == "ok" else f"FAILED: {record['error']}"
        log(f"   {name}: {status}")
    return folder, new_records


def _key(record: dict) -> tuple:
    return (record["mode"], record["model"], record["dataset"], record["preset"], record["seed"],
            record["config_hash"])


def _base_record(name: str, seed: int, request: RunRequest, data) -> dict:
    spec = models.get_spec(name)
    config = {
        "model": model_config(name, request.preset, data, request.model_args),
        "train": dataclasses.asdict(request.preset.train),
        "data": dataclasses.asdict(request.preset.data),
    }
    return {
        "mode": "profile" if request.profile_only else "train",
        "model": name, "family": spec.family, "paper": spec.paper,
        "dataset": data.name, "dataset_info": data.describe(), "preset": request.preset.name,
        "seed": seed, "config": config, "config_hash": config_hash(config),
        "device": str(request.device), "device_name": device_name(request.device),
        "versions": versions(), "git_commit": git_commit(), "started_at": now(),
    }


def _run_cell(name, seed, model_args, request: RunRequest, data, folder: Path,
              tag: str = "") -> dict:
    started = time.perf_counter()
    cell = {"status": "ok", "error": None, "metrics": None, "train": None, "failed_step": None}
    try:
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = models.create_model(name, **model_args)
        cfg = request.preset.train
        cell["cost"] = profile_model(model, data, cfg, request.device, cfg.batch_size,
                                     request.preset.profile_repeats)
        if not request.profile_only:
            cell.update(_train_and_test(name, seed, model, request, data, folder, tag))
    except Exception as error:  # one model's failure is recorded; the grid goes on
        kind = "out of memory: " if is_out_of_memory(error) else ""
        cell.update(status="failed", error=f"{kind}{type(error).__name__}: {error}",
                    failed_step=getattr(error, "failed_step", None),
                    traceback=traceback.format_exc(limit=8))
    if cell["status"] != "ok":  # the error (and its frames' tensors) is released by now
        model = None  # noqa: F841
        free_memory(request.device)
    cell["wall_s"] = time.perf_counter() - started
    return cell


def _train_and_test(name, seed, model, request: RunRequest, data, folder: Path,
                    tag: str = "") -> dict:
    cfg, device = request.preset.train, request.device
    training = None
    safe_component(name, "model name")
    if is_trainable(model):
        # The config hash in the name: a changed configuration never resumes another's checkpoint.
        cell_name = f"{name}__seed{seed}" + (f"__{safe_component(tag, 'config hash')}" if tag else "")
        checkpoints = folder / "checkpoints" / cell_name
        trainer = Trainer(model, data, cfg, device, seed, checkpoints)
        training = dataclasses.asdict(trainer.fit(progress=request.progress))
    model.to(device)
    result = evaluate(model, data.test, data.in_len, data.out_len, device, cfg.eval_batch_size,
                      cfg.amp, keep_examples=EXAMPLE_CLIPS)
    if not all(math.isfinite(v) for v in result["headline"].values()
               if isinstance(v, (int, float))):
        raise DivergedError(f"non-finite test metrics {result['headline']}")
    examples = folder / "examples"
    examples.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(examples / f"{name}__seed{seed}.npz", **result.pop("examples"))
    return {"metrics": result, "train": training}
