"""Compilation: ``torch.compile`` of what a model runs per step."""
from __future__ import annotations

import torch

from models.base import RecurrentPredictor


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
