"""Runs the benchmark grid: for each (model, seed) cell, train, evaluate, profile, record."""
from __future__ import annotations

import dataclasses
import inspect
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import models
from datasets import MovingMNISTConfig, moving_mnist

from .config import DataConfig, Preset, config_hash
from .evaluate import evaluate
from .profile import profile_model
from .provenance import device_name, git_commit, now, versions
from .store import ResultsStore
from .train import Trainer, is_trainable

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


def load_data(data: DataConfig, data_root: str | None, cache_dir: str):
    if data.dataset != "mmnist":
        raise ValueError(f"unknown dataset {data.dataset!r}; known: mmnist")
    return moving_mnist(MovingMNISTConfig(
        digits_per_clip=data.digits_per_clip, frame_size=data.frame_size, in_len=data.in_len,
        out_len=data.out_len, n_val=data.n_val, n_test=data.n_test, data_root=data_root,
        cache_dir=cache_dir,
    ))


def model_config(name: str, preset: Preset, data, user_args: dict) -> dict:
    """Constructor arguments: the data's shape, the preset's scaling (generic where accepted, then
    the model's own for this preset), then the user's."""
    spec = models.get_spec(name)
    accepted = inspect.signature(spec.build).parameters
    config = {"channels": data.channels, "height": data.height, "width": data.width}
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


def run_grid(request: RunRequest, log=print) -> tuple[Path, list[dict]]:
    """Runs every cell not already done; returns the results folder and the new records."""
    data = load_data(request.preset.data, request.data_root, request.cache_dir)
    folder = out_folder(request.out_root, data, request.preset)
    store = ResultsStore(folder)
    new_records = []
    for name in request.models:
        for seed in request.seeds:
            record = _base_record(name, seed, request, data)
            if store.done(_key(record)):
                log(f"skip {name} seed {seed}: already recorded in {store.path}")
                continue
            log(f"== {name} (seed {seed}, preset {request.preset.name}, {data.name})")
            record.update(_run_cell(name, seed, record["config"]["model"], request, data, folder))
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


def _run_cell(name, seed, model_args, request: RunRequest, data, folder: Path) -> dict:
    started = time.perf_counter()
    cell = {"status": "ok", "error": None, "metrics": None, "train": None}
    try:
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = models.create_model(name, **model_args)
        cfg = request.preset.train
        cell["cost"] = profile_model(model, data, cfg, request.device, cfg.batch_size,
                                     request.preset.profile_repeats)
        if not request.profile_only:
            cell.update(_train_and_test(name, seed, model, request, data, folder))
    except Exception as error:  # one model's failure is recorded; the grid goes on
        cell.update(status="failed", error=f"{type(error).__name__}: {error}",
                    traceback=traceback.format_exc(limit=8))
    cell["wall_s"] = time.perf_counter() - started
    return cell


def _train_and_test(name, seed, model, request: RunRequest, data, folder: Path) -> dict:
    cfg, device = request.preset.train, request.device
    training = None
    if is_trainable(model):
        checkpoints = folder / "checkpoints" / f"{name}__seed{seed}"
        trainer = Trainer(model, data, cfg, device, seed, checkpoints)
        training = dataclasses.asdict(trainer.fit(progress=request.progress))
    model.to(device)
    result = evaluate(model, data.test, data.in_len, data.out_len, device, cfg.eval_batch_size,
                      cfg.amp, keep_examples=EXAMPLE_CLIPS)
    examples = folder / "examples"
    examples.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(examples / f"{name}__seed{seed}.npz", **result.pop("examples"))
    return {"metrics": result, "train": training}
