"""The optimizer and the learning-rate scheduler a configuration names, and how often the
scheduler is stepped (per epoch, or per iteration for ``ITERATION_SCHEDULES``)."""
from __future__ import annotations

import torch

from ..config import TrainConfig, choice_error


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` (adamw, adam) over the model's trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    # The fused CUDA kernel updates every parameter in a few launches instead of several each.
    fused = {"fused": True} if params and all(p.is_cuda for p in params) else {}
    kinds = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
    if cfg.optimizer in kinds:
        return kinds[cfg.optimizer](params, lr=cfg.lr, betas=cfg.betas,
                                    weight_decay=cfg.weight_decay, **fused)
    raise choice_error("optimizer", cfg.optimizer)


# Schedules stepped after every iteration (the others once per epoch).
ITERATION_SCHEDULES = ("onecycle",)
ONECYCLE_FINAL_DIV_FACTOR = 1e4  # OpenSTL's default (openstl/utils/parser.py, c74deb5)


def make_scheduler(optimizer, cfg: TrainConfig):
    """``cfg.lr_schedule``: cosine from ``lr`` to ``min_lr`` over ``cfg.epochs``, or constant,
    stepped once per epoch; or onecycle, torch's OneCycleLR as OpenSTL builds it
    (openstl/core/optim_scheduler.py, c74deb5: max_lr = lr, total_steps = epochs x
    steps_per_epoch, final_div_factor 1e4; torch's defaults otherwise: pct_start 0.3, cosine
    annealing, div_factor 25, Adam's beta1 cycled 0.95 -> 0.85 -> 0.95), stepped once per
    iteration. A budgeted run sets the rate itself (bench.train.budget)."""
    if cfg.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * cfg.steps_per_epoch,
            final_div_factor=ONECYCLE_FINAL_DIV_FACTOR)
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr
        )
    if cfg.lr_schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    raise choice_error("lr_schedule", cfg.lr_schedule)
