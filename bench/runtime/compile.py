"""Compilation: ``torch.compile`` of what a model runs per step, and the fast paths (exact
reformulations, models/fast.py) a configuration switches on."""
from __future__ import annotations

import torch

from models import fast
from models.base import RecurrentPredictor

# TrainConfig options (bool) that switch on the fast path of the same name in models.fast
FAST_PATH_OPTIONS = ("fused_norm", "fused_convs")


def asked_fast_paths(cfg) -> list[str]:
    """The fast paths ``cfg`` (a TrainConfig) switches on."""
    return [name for name in FAST_PATH_OPTIONS if getattr(cfg, name, False)]


def apply_fast_paths(model: torch.nn.Module, cfg) -> list[str]:
    """Switches on, in place, the fast paths ``cfg`` asks for in every module of ``model`` that
    offers them; returns those that applied (a model offering none of them: [])."""
    return fast.enable(model, asked_fast_paths(cfg))


def compile_model(model: torch.nn.Module, mode: str = "default") -> torch.nn.Module:
    """``torch.compile`` what the model runs per step, in place: each recurrent cell's ``step``
    (the rollout around it stays eager: its Python loop and scheduled-sampling choices would
    otherwise be traced into every graph), or the whole forward of a feed-forward model. A
    recurrent model that returns an explicit zero state (``initial_state``) is compiled once for
    t = 0 and the steps after it: no graph specialised to a ``None`` state.
    Parameters and state-dict keys are unchanged, so checkpoints stay interchangeable."""
    recurrent = [m for m in model.modules() if isinstance(m, RecurrentPredictor)]
    for module in recurrent:  # one graph from t = 0 on (RecurrentPredictor.initial_state)
        module.state_requires_grad = True
    targets = [(m, "step") for m in recurrent] or [(model, "forward")]
    for module, name in targets:
        setattr(module, name, torch.compile(getattr(module, name), mode=mode, dynamic=False))
    return model
