"""``run_bench.py evaluate``: a finished cell's best checkpoint tested on another dataset or preset.

Trained on two-digit Moving MNIST, tested on three digits::

    python run_bench.py --models convlstm                      # trains into results/mmnist-embedded/quick
    python run_bench.py evaluate --models convlstm --from-dataset mmnist --dataset mmnist3

The training cell is the newest successful training record of (model, seed, preset) in the store
of the data it was trained on (``--from-hash`` picks one configuration where several were
trained); its model is rebuilt from the record's configuration and its checkpoint (best on
validation, as the runner tested it) loaded. The target's test clips go through the runner's
evaluation (:func:`bench.evaluation.loop.evaluate`: per-frame and per-clip metrics, the training run's
precision). One record of mode ``evaluate`` is appended to the target's store
(``OUT/<target data>/<target preset>/records.jsonl``); it names both sides (``trained_on``,
``evaluated_on``) and its cell key is its own, so it never stands in for, or hides, a training
record. A re-run skips an evaluation already done with the same checkpoint (by its sha256), target
and kind of device; ``--rerun`` evaluates again.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

import datasets
import models

from ..config import DataConfig, Preset, TrainConfig, apply_overrides, get_preset
from ..evaluation.domain import dataset_scorers
from ..evaluation.loop import evaluate
from ..runtime.clock import now
from ..runtime.compile import apply_fast_paths
from ..runtime.memory import free_memory
from ..store import RECORDS_FILE, ResultsStore, cell_key
from ..train.checkpoint import load_checkpoint
from ..train.divergence import check_finite_metrics
from .records import base_record, failure
from .request import EvaluationRequest, load_data_or_explain, preset_data

MODE = "evaluate"


def load_target(request: EvaluationRequest, cells: list[dict]) -> tuple[DataConfig, object]:
    """The test data's options and the test data (:func:`target_config`), which every cell's
    model must fit (:func:`check_fits`)."""
    preset = get_preset(request.target_preset)
    data_config = target_config(preset, request.dataset, request.in_len, request.out_len)
    data = load_data_or_explain(data_config, request.data_root, request.cache_dir)
    for cell in cells:
        check_fits(cell, data)
    return data_config, data


def target_config(preset: Preset, dataset: str, in_len: int | None = None,
                  out_len: int | None = None) -> DataConfig:
    """The test data's options: the preset's, for ``dataset``, with ``in_len``/``out_len``
    (``--in-len/--out-len``) where given."""
    data = preset_data(preset.data, dataset)
    lengths = {k: v for k, v in (("in_len", in_len), ("out_len", out_len)) if v is not None}
    for key, value in lengths.items():
        fixed = datasets.get_dataset(dataset).fixed
        if key in fixed and fixed[key] != value:
            raise ValueError(f"--{key.replace('_', '-')} {value}: dataset {dataset!r} fixes "
                             f"{key} = {fixed[key]}")
        if value < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1; got {value}")
    return apply_overrides(data, lengths)


def check_fits(cell: dict, data) -> None:
    """The test frames must have the training frames' shape; a frame count the model is built
    for (a constructor argument, e.g. SimVP's in_len) must be the same, others may differ."""
    record = cell["record"]
    info, built = record["dataset_info"], record["config"]["model"]
    trained = (info["channels"], info["height"], info["width"])
    target = (data.channels, data.height, data.width)
    where = f"{record['model']} seed {record['seed']}, trained on {record['dataset']}"
    if trained != target:
        raise ValueError(f"{where} ({record['preset']}), takes {'x'.join(map(str, trained))} "
                         f"frames (C x H x W); {data.name} has {'x'.join(map(str, target))}: test "
                         "data must have the frame shape it was trained on (e.g. a preset of the "
                         "same frame size)")
    for key in ("in_len", "out_len"):
        if key in built and built[key] != getattr(data, key):
            raise ValueError(f"{where}, is built for {key} = {built[key]} ({info['in_len']} -> "
                             f"{info['out_len']} frames); the test clips have {data.in_len} -> "
                             f"{data.out_len}; use --{key.replace('_', '-')} {built[key]}")


def evaluate_cells(cells: list[dict], data, data_config: DataConfig, request: EvaluationRequest,
                   log=print) -> tuple[Path, int]:
    """Tests each cell (:func:`run_evaluation`) not already evaluated (unless ``request.rerun``),
    appending its record to the target's store ``OUT/<data>/<preset>``; returns that folder and
    the number of failed evaluations."""
    preset = request.target_preset
    store = ResultsStore(request.out_root / data.name / preset)
    recorded = [] if request.rerun else store.records()
    failed = 0
    for cell in cells:
        record = evaluation_record(cell, data, data_config, preset, request.device)
        source, name, seed = record["trained_on"], record["model"], record["seed"]
        done = None if request.rerun else store.done(cell_key(record), recorded)
        if done:
            log(f"skip {name} seed {seed} trained on {source['dataset']} ({source['preset']}): "
                f"evaluated on {data.name} ({preset}) at {done['finished_at']}, in {store.path}; "
                "--rerun evaluates it again")
            continue
        log(f"== {name} (seed {seed}) trained on {source['dataset']} ({source['preset']}), "
            f"tested on {data.name} ({preset}, {data.in_len} -> {data.out_len} frames)")
        record.update(run_evaluation(cell, data, request.device, record["device_settings"]))
        record["finished_at"] = now()
        store.append(record)
        if record["status"] == "ok":
            h, own = record["metrics"]["headline"], source["test_headline"] or {}
            log(f"   {name}: MSE {h['mse']:.2f}, MAE {h['mae']:.1f}, SSIM {h['ssim']:.4f}, PSNR "
                f"{h['psnr']:.2f} (on its own test set: MSE {own.get('mse', float('nan')):.2f}) "
                f"in {record['wall_s']:.1f}s")
        else:
            failed += 1
            log(f"   {name}: FAILED: {record['error']}")
    return store.folder, failed


def evaluation_record(cell: dict, data, data_config: DataConfig, preset: str,
                      device: torch.device) -> dict:
    """Everything but the metrics (:func:`bench.grid.records.base_record`, mode ``evaluate``):
    both sides' provenance (``trained_on``, ``evaluated_on``), and a config hash of what decides
    the numbers (the checkpoint's bytes, the test data's options)."""
    trained, name = cell["record"], cell["record"]["model"]
    checkpoint = None
    if cell["checkpoint"] is not None:
        checkpoint = {"path": str(cell["checkpoint"]), "sha256": cell["sha256"],
                      "epoch": trained["train"].get("best_epoch"),
                      "val_mse": trained["train"].get("best_val_mse")}
    trained_on = {
        "dataset": trained["dataset"], "preset": trained["preset"],
        "config_hash": trained["config_hash"], "store": str(cell["folder"] / RECORDS_FILE),
        "finished_at": trained.get("finished_at"), "device_kind": trained.get("device_kind"),
        "precision": trained.get("precision"), "checkpoint": checkpoint,
        "test_headline": (trained.get("metrics") or {}).get("headline"),
    }
    config = {"model": trained["config"]["model"], "data": dataclasses.asdict(data_config),
              "trained": {k: trained_on[k] for k in ("dataset", "preset", "config_hash")}
              | {"checkpoint_sha256": cell["sha256"]}}
    record = base_record(MODE, name, trained["seed"], data, preset, config, device,
                         _train_config(trained))
    record["trained_on"] = trained_on
    record["evaluated_on"] = {"dataset": data.name, "preset": preset, "in_len": data.in_len,
                              "out_len": data.out_len, "test_clips": len(data.test)}
    return record


def run_evaluation(cell: dict, data, device: torch.device, settings: dict | None = None) -> dict:
    """The checkpoint's model on ``data.test``, at the training run's precision and batch size
    and with its fast paths (``settings``: the record's device settings, completed with those
    that applied); a failure is returned as the record's status and error
    (bench.grid.records.failure)."""
    train = _train_config(cell["record"])
    started = time.perf_counter()
    out = {"status": "ok", "error": None, "metrics": None}
    try:
        model = load_model(cell, device)
        applied = apply_fast_paths(model, train)
        if settings is not None:
            out["device_settings"] = {**settings, "fast_paths": applied}
        result = evaluate(model, data.test, data.in_len, data.out_len, device,
                          train.eval_batch_size, train.amp, per_clip=True,
                          scorers=dataset_scorers(data))
        check_finite_metrics(result)
        out["metrics"] = result
    except Exception as error:  # recorded, as the grid records a cell's failure
        out.update(failure(error))
    finally:
        model = None  # noqa: F841
        free_memory(device)
    out["wall_s"] = time.perf_counter() - started
    return out


def load_model(cell: dict, device: torch.device) -> torch.nn.Module:
    """The trained model: built from its record's configuration, its checkpoint's weights."""
    record = cell["record"]
    model = models.create_model(record["model"], **record["config"]["model"])
    if cell["checkpoint"] is not None:
        state = load_checkpoint(cell["checkpoint"], "cpu", keys=("model",))  # names a bad file
        best = [record["train"].get("best_epoch"), record["train"].get("best_val_mse")]
        if cell["checkpoint"].name == "best.pt" and state.get("best") != best:
            raise ValueError(f"{cell['checkpoint']} holds epoch {state.get('best')[0]} (validation "
                             f"MSE {state.get('best')[1]}), not the record's epoch {best[0]} "
                             f"({best[1]}): a later training of the same configuration replaced it")
        model.load_state_dict(state["model"])
    return model.to(device)


def _train_config(record: dict) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in record["config"]["train"].items() if k in names})


