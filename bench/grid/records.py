"""The one record builder: the fields every record of a cell holds (mode, model, data, preset,
seed, configuration and its hash, where and how it ran), a grid cell's record on top of them,
and the fields of a failure (status, error text, traceback) for every mode."""
from __future__ import annotations

import dataclasses
import traceback

import models

from ..config import config_hash, hashed_train_options
from ..runtime import distributed
from ..runtime.memory import is_out_of_memory
from ..runtime.provenance import run_fields
from .request import RunRequest, model_config

TRACEBACK_FRAMES = 8  # the innermost frames a failed record keeps


def base_record(mode: str, name: str, seed: int, data, preset: str, config: dict, device,
                train) -> dict:
    """What every record says of its cell, whatever the mode (``train``, ``profile``,
    ``evaluate``): the model and its paper, the data and its description, the preset, the seed,
    ``config`` and its hash (what decides the numbers), and where and how it ran
    (:func:`bench.runtime.provenance.run_fields`; ``train``: the TrainConfig of its precision
    and device settings)."""
    spec = models.get_spec(name)
    return {
        "mode": mode, "model": name, "family": spec.family, "paper": spec.paper,
        "dataset": data.name, "dataset_info": data.describe(), "preset": preset,
        "seed": seed, "config": config, "config_hash": config_hash(config),
        **run_fields(device, train),
    }


def cell_config(name: str, request: RunRequest, data, matched: dict | None = None) -> dict:
    """A grid cell's configuration (hashed into its ``config_hash``): the model's constructor
    arguments, the training options that decide the numbers, the data options; a budget, LPIPS
    or a size match only when asked for (without them the hash is what it always was)."""
    request = request.for_model(name)
    config = {
        "model": model_config(name, request.preset, data, request.model_args),
        "train": hashed_train_options(request.preset.train),
        "data": dataclasses.asdict(request.preset.data),
    }
    if request.preset.applied_recipe is not None:  # the model's recipe, with its source
        config["recipe"] = request.preset.applied_recipe.as_dict()
    if request.budget is not None:
        config["budget"] = request.budget.as_dict()
    if request.lpips:  # a cell tested with LPIPS is another cell than one tested without
        config["eval"] = {"lpips": True}
    if matched is not None:
        config["match"] = request.match.as_dict()
        if matched["scalable"]:
            config["model"][matched["width_arg"]] = matched["width"]
    return config


def cell_record(name: str, seed: int, request: RunRequest, data, matched: dict | None = None) -> dict:
    """A grid cell's record before it runs (mode ``profile`` with ``--profile-only``, else
    ``train``): :func:`base_record` with the budget, the size match (``matched``: its
    bench.cost.match outcome), the torchrun layout, the reference model and no estimate yet."""
    mode = "profile" if request.profile_only else "train"
    config = cell_config(name, request, data, matched)
    request = request.for_model(name)
    record = base_record(mode, name, seed, data, request.preset.name, config, request.device,
                         request.preset.train)
    record.update({
        "budget": request.budget.as_dict() if request.budget is not None else None,
        "match": matched,
        "distributed": distributed.describe(request.preset.train.batch_size),
        "estimate": None, "reference": request.reference,
    })
    return record


def traceback_text(error: BaseException) -> str:
    """``error``'s traceback as a record keeps it: the one kept on it earlier (by
    :func:`keep_traceback`) or, inside the ``except`` handling it, the current one."""
    return getattr(error, "traceback", None) or traceback.format_exc(limit=TRACEBACK_FRAMES)


def keep_traceback(error: BaseException) -> BaseException:
    """Keeps ``error``'s traceback on it (call inside its ``except``), for an error raised again
    later as a cell's failure (a failed cost measurement); returns it."""
    error.traceback = traceback_text(error)
    return error


def error_text(error: BaseException) -> str:
    """A failed record's ``error``: ``TYPE: message``, prefixed ``out of memory: `` when memory
    ran out."""
    kind = "out of memory: " if is_out_of_memory(error) else ""
    return f"{kind}{type(error).__name__}: {error}"


def failure(error: BaseException) -> dict:
    """The fields of a failed record, in every mode: ``status``, ``error`` and ``traceback``
    (call inside the ``except`` handling ``error``)."""
    return {"status": "failed", "error": error_text(error), "traceback": traceback_text(error)}
