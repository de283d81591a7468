"""The fast paths a verification runs each check with.

A check runs first as the eager reference (no fast path), then with each fast path the model
offers alone (``models.fast.supported``), then with all of them together. Besides the model's
own fast paths (models/fast.py), ``TRAIN_PATHS`` are the TrainConfig switches that change how
a step computes: ``compile`` (asked for with ``--compile``: compiling takes minutes) and
``cuda_graph`` (training steps on CUDA, where TrainConfig has it).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from models import fast

from ..config import TrainConfig
from ..runtime.compile import compile_model

TRAIN_PATHS = {"compile": "torch.compile of each step (bench.runtime.compile)",
               "cuda_graph": "the training step replayed as a CUDA graph"}


@dataclass(frozen=True)
class PathSet:
    """The fast paths of one row: the model's own, and TrainConfig switches set to true."""

    model: tuple[str, ...] = ()
    train: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        names = self.model + self.train
        if not names:
            return "eager"
        return names[0] if len(names) == 1 else "all: " + " + ".join(names)

    def prepare(self, model: torch.nn.Module) -> None:
        """Switches this row's model fast paths on, and compiles for ``compile`` (golden rows)."""
        fast.enable(model, self.model)
        if "compile" in self.train:
            compile_model(model)

    def train_config(self, cfg: TrainConfig) -> TrainConfig:
        return dataclasses.replace(cfg, **{name: True for name in self.train})


def train_paths(device: torch.device, compile_: bool, training: bool) -> list[str]:
    """The TrainConfig-level paths that apply: ``compile`` when asked, ``cuda_graph`` for a
    training step on CUDA (when this TrainConfig has the switch)."""
    names = ["compile"] if compile_ else []
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if training and device.type == "cuda" and "cuda_graph" in fields:
        names.append("cuda_graph")
    return names


def path_sets(model: torch.nn.Module, train: list[str]) -> list[PathSet]:
    """Eager, each fast path alone, then all together (when there are two or more)."""
    offered = fast.supported(model)
    sets = [PathSet()] + [PathSet(model=(name,)) for name in offered]
    sets += [PathSet(train=(name,)) for name in train]
    if len(offered) + len(train) > 1:
        sets.append(PathSet(tuple(offered), tuple(train)))
    return sets
