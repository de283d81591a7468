"""What a run is asked to do (RunRequest for the grid, EvaluationRequest for ``evaluate``) and
where its data and results are: the data configuration for a dataset, loading the data, a
model's constructor arguments, the results folder and the folders a run writes in it."""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path

import torch

import datasets
import models
from datasets import safe_component

from ..config import DataConfig, Preset, apply_overrides
from ..cost.match import MatchTarget
from ..train.budget import Budget


@dataclass
class RunRequest:
    """What ``run_bench.py`` (the main command) is asked to do: the grid of ``models`` x ``seeds``
    at ``preset`` on ``device``, written below ``out_root``."""

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
    log_to: list[str] = field(default_factory=list)  # experiment trackers, each cell a run (bench.track)

    def for_model(self, name: str) -> RunRequest:
        """The request as ``name``'s cells run it: the preset with that model's recipe applied
        (bench.config.Preset.for_model; the request itself when the preset has no recipes)."""
        preset = self.preset.for_model(name)
        return self if preset is self.preset else dataclasses.replace(self, preset=preset)


@dataclass
class EvaluationRequest:
    """What ``run_bench.py evaluate`` is asked to do: which trained cells (``models`` x ``seeds``
    trained on ``from_dataset`` at ``from_preset``, of configuration ``from_hash`` where several
    were trained), the data to test them on (``dataset`` at ``preset``, default ``from_preset``,
    with ``in_len``/``out_len``), and where (``out``: the results root as the user gave it)."""
    models: list[str]
    seeds: list[int]
    dataset: str
    device: torch.device
    out: str = "results"
    from_dataset: str = "mmnist"
    from_preset: str = "quick"
    from_hash: str | None = None
    preset: str | None = None
    in_len: int | None = None
    out_len: int | None = None
    data_root: str | None = None
    cache_dir: str = ".cache/datasets"
    rerun: bool = False

    @property
    def out_root(self) -> Path:
        return Path(self.out)

    @property
    def target_preset(self) -> str:
        return self.preset or self.from_preset


def preset_data(data: DataConfig, dataset: str) -> DataConfig:
    """A preset's data options for ``dataset``, with what the dataset fixes (its frame counts)."""
    fixed = datasets.get_dataset(dataset).fixed
    if dataset != data.dataset or fixed:
        return apply_overrides(data, {"dataset": dataset, **fixed})
    return data


def load_data(data: DataConfig, data_root: str | None, cache_dir: str):
    """The one place the harness builds data: the dataset registry, by name.

    Each dataset takes the options that apply to it (e.g. frame_size and digits_per_clip only
    for mmnist; a TOML-described dataset keeps its own in_len/out_len).
    """
    return datasets.build_dataset(
        data.dataset, in_len=data.in_len, out_len=data.out_len, frame_size=data.frame_size,
        digits_per_clip=data.digits_per_clip, n_val=data.n_val, n_test=data.n_test,
        data_root=data_root, cache_dir=cache_dir,
    )


def load_data_or_explain(data: DataConfig, data_root: str | None, cache_dir: str):
    """:func:`load_data`, with unreadable or corrupt files (OSError, EOFError, zlib.error...)
    turned into one ValueError naming the dataset and the folder; a ValueError or KeyError (a
    bad option, an unknown name) as it is."""
    try:
        return load_data(data, data_root, cache_dir)
    except (ValueError, KeyError):
        raise
    except Exception as error:
        where = f" from --data-root {data_root!r}" if data_root else ""
        raise ValueError(f"cannot load dataset {data.dataset!r}{where}: "
                         f"{type(error).__name__}: {error}") from None


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


# The folders a run writes, relative to its results folder (bench.cli.run checks them up front).
RUN_FOLDERS = ("", "cost_cache", "examples", "checkpoints")


def out_folder(out_root: Path, data, preset: Preset) -> Path:
    """A run's results folder: ``OUT/<data name>/<preset>``."""
    return Path(out_root) / safe_component(data.name, "dataset name") / preset.name


def checkpoint_dir(folder: Path, name: str, seed: int, tag: str) -> Path:
    """Where a cell keeps last.pt and best.pt. The config hash (``tag``) in the name: a changed
    configuration never resumes another's checkpoint."""
    cell_name = f"{name}__seed{seed}__{safe_component(tag, 'config hash')}"
    return Path(folder) / "checkpoints" / cell_name

