"""The optimizer and the per-epoch learning-rate scheduler a configuration names."""
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


def make_scheduler(optimizer, cfg: TrainConfig):
    """``cfg.lr_schedule``: cosine from ``lr`` to ``min_lr`` over ``cfg.epochs``, or constant;
    stepped once per epoch (a budgeted run sets the rate itself, bench.train.budget)."""
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr
        )
    if cfg.lr_schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    raise choice_error("lr_schedule", cfg.lr_schedule)
