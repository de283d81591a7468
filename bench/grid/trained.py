"""The cells ``run_bench.py evaluate`` tests: each (model, seed)'s newest successful training
record in the store it was trained in, its checkpoint and that file's sha256; what trains a
missing one."""
from __future__ import annotations

import json
from pathlib import Path

import models
from datasets import safe_component
from datasets.core.digests import file_digest

from ..store import RECORDS_FILE, ResultsStore
from .request import EvaluationRequest, checkpoint_dir


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


def find_cells(request: EvaluationRequest, log=print) -> list[dict]:
    """Every (model, seed) cell of ``request`` (:func:`find_cell`) in the store it was trained
    in; one ValueError naming every cell that is missing."""
    folder = training_store(request.out_root, request.from_dataset, request.from_preset)
    records = ResultsStore(folder).records()
    command = train_command(records, request.from_dataset, request.from_preset, request.out)
    problems, cells = [], []
    for name in request.models:
        for seed in request.seeds:
            try:
                cells.append(find_cell(records, folder, name, seed, request.from_preset,
                                       request.from_hash, command, log))
            except ValueError as error:
                problems.append(str(error))
    if problems:
        raise ValueError("\n".join(problems))
    return cells


def find_cell(records: list[dict], folder: Path, name: str, seed: int, preset: str,
              wanted: str | None, command: str, log=print) -> dict:
    """The newest successful training record of (name, seed, preset) (of configuration
    ``wanted``, a hash or its start, when given), its checkpoint and that file's sha256:
    ``{"record", "folder", "checkpoint", "sha256"}``; a ValueError naming what was looked for,
    and the command that trains it (:func:`train_command`), when there is none."""
    mine = [r for r in records if r["mode"] == "train" and r["model"] == name
            and r["seed"] == seed and r["preset"] == preset]
    ok = _with_hash([r for r in mine if r["status"] == "ok"], wanted, name, seed, folder, log)
    train = command.replace("{model}", name).replace("{seed}", str(seed))
    if not ok:
        hashed = f", config hash {wanted}..." if wanted else ""
        failed = (f" (its {len(mine)} run(s) there failed: {mine[-1].get('error')})"
                  if mine and not wanted else "")
        raise ValueError(f"no finished training of {name} seed {seed} (mode train, status ok, "
                         f"preset {preset}{hashed}) in {folder / RECORDS_FILE}{failed}; "
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
    return {"record": record, "folder": folder, "checkpoint": path, "sha256": file_digest(path)}


def _with_hash(finished: list[dict], wanted: str | None, name: str, seed: int,
               folder: Path, log) -> list[dict]:
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
        log(f"note: {name} seed {seed} has no training (no parameters), so --from-hash "
              f"{wanted} does not apply to it; evaluating it as it is (record "
              f"{newest['config_hash']})")
        return [newest]
    hashes = ", ".join(dict.fromkeys(r["config_hash"] for r in finished))
    raise ValueError(f"no finished training of {name} seed {seed} has a config hash starting "
                     f"with {wanted} in {folder / RECORDS_FILE}; its finished trainings there have "
                     f"config hash {hashes}: pass one of them to --from-hash, or evaluate "
                     f"{name} in a command of its own")


def train_command(records: list[dict], from_dataset: str, from_preset: str, out: str) -> str:
    """The training command of a missing cell ({model}, {seed} to fill in): the dataset the
    store's training records name (else ``from_dataset``), the preset, the results root."""
    names = {r["config"]["data"]["dataset"] for r in records if r["mode"] == "train"}
    dataset = names.pop() if len(names) == 1 else from_dataset
    out = "" if out == "results" else f" --out {out}"
    return (f"python run_bench.py --models {{model}} --dataset {dataset} --preset "
            f"{from_preset} --seeds {{seed}}{out}")


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

