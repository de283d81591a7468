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
import hashlib
import json
import time
import traceback
from pathlib import Path

import torch

import datasets
import models

from ..config import TrainConfig, apply_overrides, config_hash
from ..evaluation.loop import evaluate
from ..runtime.clock import now
from ..runtime.memory import free_memory
from ..runtime.provenance import run_fields
from ..store import RECORDS_FILE, ResultsStore, cell_key
from ..train.loop import check_finite_metrics, load_checkpoint
from .checks import safe_component
from .request import preset_data
from .runner import checkpoint_dir, load_data

MODE = "evaluate"


def training_store(out_root: Path, dataset: str, preset: str) -> Path:
    """The store of the cells trained on ``dataset`` at ``preset``: ``OUT/dataset/preset`` when it
    holds one, else the one folder whose training records name ``dataset`` as their --dataset."""
    safe_component(dataset, "--from-dataset")
    direct = out_root / dataset / preset
    if (direct / RECORDS_FILE).exists():
        return direct
    named = [path.parent for path in sorted(out_root.glob(f"*/{preset}/{RECORDS_FILE}"))
             if any(r["mode"] == "train" and r["config"]["data"]["dataset"] == dataset
                    for r in ResultsStore(path.parent).records())]
    if len(named) > 1:
        raise ValueError(f"cells trained on {dataset!r} at preset {preset} are in "
                         f"{len(named)} folders: {', '.join(map(str, named))}; name one with "
                         f"--from-dataset {' or '.join(p.parent.name for p in named)}")
    return named[0] if named else direct


def find_cell(records: list[dict], folder: Path, name: str, seed: int, args, command: str) -> dict:
    """The newest successful training record of (name, seed, preset), its checkpoint and that
    file's sha256: ``{"record", "folder", "checkpoint", "sha256"}``; a ValueError naming what was
    looked for, and the command that trains it, when there is none."""
    mine = [r for r in records if r["mode"] == "train" and r["model"] == name
            and r["seed"] == seed and r["preset"] == args.from_preset]
    ok = _with_hash([r for r in mine if r["status"] == "ok"], args.from_hash, name, seed, folder)
    train = command.replace("{model}", name).replace("{seed}", str(seed))
    if not ok:
        wanted = f", config hash {args.from_hash}..." if args.from_hash else ""
        failed = (f" (its {len(mine)} run(s) there failed: {mine[-1].get('error')})"
                  if mine and not args.from_hash else "")
        raise ValueError(f"no finished training of {name} seed {seed} (mode train, status ok, "
                         f"preset {args.from_preset}{wanted}) in {folder / RECORDS_FILE}{failed}; "
                         f"train it with: {train}")
    newest = {r["config_hash"]: r for r in ok}
    if len(newest) > 1:
        raise ValueError(f"{name} seed {seed} was trained in {len(newest)} configurations in "
                         f"{folder / RECORDS_FILE}: {_differences(list(newest.values()))}; pick "
                         "one with --from-hash HASH")
    record = ok[-1]
    if record.get("train") is None:  # no trainable parameters: nothing was saved
        if hasattr(models.create_model(name, **record["config"]["model"]), "fit_from_data"):
            raise ValueError(f"{name} keeps what it learns from its training data in no "
                             "checkpoint; it cannot be tested on other data (models with trained "
                             "weights and stateless baselines such as persistence can)")
        return {"record": record, "folder": folder, "checkpoint": None, "sha256": None}
    best = record["train"].get("best_epoch") is not None  # as the runner tested it
    path = checkpoint_dir(folder, name, seed, record["config_hash"]) / (
        "best.pt" if best else "last.pt")
    if not path.is_file():
        raise ValueError(f"the checkpoint of {name} seed {seed} (config {record['config_hash']}, "
                         f"trained {record.get('finished_at')}) is missing: {path}; train it again "
                         f"with: {train} --rerun")
    return {"record": record, "folder": folder, "checkpoint": path, "sha256": _sha256(path)}


def _with_hash(finished: list[dict], wanted: str | None, name: str, seed: int,
               folder: Path) -> list[dict]:
    """The finished records of configuration ``wanted`` (a hash or its start; all when None).

    A model without training (no parameters: persistence, blank) has no configuration of its
    own to pick, so ``--from-hash`` does not apply to it: its newest record is evaluated as it
    is, and a line says so. Where other configurations of a trained model are done, the error
    names their hashes (training the default configuration again would only skip)."""
    if wanted is None:
        return finished
    chosen = [r for r in finished if r["config_hash"].startswith(wanted)]
    if chosen or not finished:
        return chosen
    if all(r.get("train") is None for r in finished):
        newest = finished[-1]
        print(f"note: {name} seed {seed} has no training (no parameters), so --from-hash "
              f"{wanted} does not apply to it; evaluating it as it is (record "
              f"{newest['config_hash']})")
        return [newest]
    hashes = ", ".join(dict.fromkeys(r["config_hash"] for r in finished))
    raise ValueError(f"no finished training of {name} seed {seed} has a config hash starting "
                     f"with {wanted} in {folder / RECORDS_FILE}; its finished trainings there have "
                     f"config hash {hashes}: pass one of them to --from-hash, or evaluate "
                     f"{name} in a command of its own")


def target_config(preset, args):
    """The test data's options: the preset's, for ``--dataset``, with ``--in-len/--out-len``."""
    data = preset_data(preset.data, args.dataset)
    lengths = {k: v for k, v in (("in_len", args.in_len), ("out_len", args.out_len))
               if v is not None}
    for key, value in lengths.items():
        fixed = datasets.get_dataset(args.dataset).fixed
        if key in fixed and fixed[key] != value:
            raise ValueError(f"--{key.replace('_', '-')} {value}: dataset {args.dataset!r} fixes "
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


def evaluate_cells(cells, data, data_config, preset: str, folder: Path, device, rerun) -> int:
    store = ResultsStore(folder)
    recorded = [] if rerun else store.records()
    failed = 0
    for cell in cells:
        record = base_record(cell, data, data_config, preset, device)
        source, name, seed = record["trained_on"], record["model"], record["seed"]
        done = None if rerun else store.done(cell_key(record), recorded)
        if done:
            print(f"skip {name} seed {seed} trained on {source['dataset']} ({source['preset']}): "
                  f"evaluated on {data.name} ({preset}) at {done['finished_at']}, in {store.path}; "
                  "--rerun evaluates it again")
            continue
        print(f"== {name} (seed {seed}) trained on {source['dataset']} ({source['preset']}), "
              f"tested on {data.name} ({preset}, {data.in_len} -> {data.out_len} frames)")
        record.update(run_evaluation(cell, data, device))
        record["finished_at"] = now()
        store.append(record)
        if record["status"] == "ok":
            h, own = record["metrics"]["headline"], source["test_headline"] or {}
            print(f"   {name}: MSE {h['mse']:.2f}, MAE {h['mae']:.1f}, SSIM {h['ssim']:.4f}, PSNR "
                  f"{h['psnr']:.2f} (on its own test set: MSE {own.get('mse', float('nan')):.2f}) "
                  f"in {record['wall_s']:.1f}s")
        else:
            failed += 1
            print(f"   {name}: FAILED: {record['error']}")
    from ..report import write_report  # pandas and seaborn take seconds to import
    from ..report.cross_eval import cross_eval_markdown, latest_evaluations
    print(f"report: {write_report(folder)}")
    evaluations = latest_evaluations(store.records())
    if evaluations:
        print(cross_eval_markdown(evaluations))
    print(f"results: {folder}")
    return 1 if failed else 0


def base_record(cell: dict, data, data_config, preset: str, device: torch.device) -> dict:
    """Everything but the metrics: both sides' provenance, and a config hash of what decides the
    numbers (the checkpoint's bytes, the test data's options)."""
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
    train = _train_config(trained)
    spec = models.get_spec(name)
    return {
        "mode": MODE, "model": name, "family": spec.family, "paper": spec.paper,
        "seed": trained["seed"], "dataset": data.name, "dataset_info": data.describe(),
        "preset": preset, "trained_on": trained_on,
        "evaluated_on": {"dataset": data.name, "preset": preset, "in_len": data.in_len,
                         "out_len": data.out_len, "test_clips": len(data.test)},
        "config": config, "config_hash": config_hash(config),
        **run_fields(device, train),
    }


def run_evaluation(cell: dict, data, device: torch.device) -> dict:
    """The checkpoint's model on ``data.test``, at the training run's precision and batch size;
    a failure is returned as the record's status and error."""
    trained = cell["record"]
    train = _train_config(trained)
    started = time.perf_counter()
    out = {"status": "ok", "error": None, "metrics": None}
    try:
        model = load_model(cell, device)
        result = evaluate(model, data.test, data.in_len, data.out_len, device,
                          train.eval_batch_size, train.amp, per_clip=True)
        check_finite_metrics(result)
        out["metrics"] = result
    except Exception as error:  # recorded, as the runner records a cell's failure
        out.update(status="failed", error=f"{type(error).__name__}: {error}",
                   traceback=traceback.format_exc(limit=8))
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


def load_test_data(config, data_root, cache_dir):
    try:
        return load_data(config, data_root, cache_dir)
    except (ValueError, KeyError):
        raise
    except Exception as error:  # unreadable or corrupt files
        where = f" from --data-root {data_root!r}" if data_root else ""
        raise ValueError(f"cannot load dataset {config.dataset!r}{where}: "
                         f"{type(error).__name__}: {error}") from None


def train_command(args, records: list[dict]) -> str:
    """The training command of a missing cell ({model}, {seed} to fill in)."""
    names = {r["config"]["data"]["dataset"] for r in records if r["mode"] == "train"}
    dataset = names.pop() if len(names) == 1 else args.from_dataset
    out = "" if args.out == "results" else f" --out {args.out}"
    return (f"python run_bench.py --models {{model}} --dataset {dataset} --preset "
            f"{args.from_preset} --seeds {{seed}}{out}")


def _differences(records: list[dict]) -> str:
    """Each configuration's hash with the options in which the configurations differ."""
    flat = [_flatten(r["config"]) for r in records]
    keys = sorted(k for k in set().union(*flat) if len({json.dumps(f.get(k)) for f in flat}) > 1)
    return "; ".join(f"{r['config_hash']} ({', '.join(f'{k}={json.dumps(f.get(k))}' for k in keys)})"
                     for r, f in zip(records, flat, strict=True))


def _flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
