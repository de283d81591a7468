"""The optimizer, the learning-rate scheduler a configuration names and how often it is stepped
(per epoch, or per iteration for ``ITERATION_SCHEDULES``), and the one way the loop writes and
reads a learning rate.

A captured training step (bench.train.graph) reads the learning rate from a device tensor at
each replay, so its optimizer is built with ``lr=torch.tensor(...)`` (fused, ``capturable``):
assigning a float into ``param_group["lr"]`` would then silently freeze the rate the graph
recorded. Every writer therefore goes through :func:`set_lr` (``fill_`` on a tensor, plain
assignment on a float); torch's LRSchedulers, the per-iteration OneCycle too, already fill
tensor rates in place.
"""
from __future__ import annotations

import torch

from ..config import TrainConfig, choice_error


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig,
                   tensor_lr: bool = False) -> torch.optim.Optimizer:
    """``cfg.optimizer`` (adamw, adam) over the model's trainable parameters.

    ``tensor_lr``: the learning rate a one-element tensor on the parameters' device; on CUDA the
    optimizer is then also ``capturable`` (its step can be recorded in a CUDA graph, which reads
    the rate at each replay); on a CPU it runs the single-tensor path (no capture there)."""
    params = [p for p in model.parameters() if p.requires_grad]
    # The fused CUDA kernel updates every parameter in a few launches instead of several each.
    on_cuda = bool(params) and all(p.is_cuda for p in params)
    options: dict = {"fused": True} if on_cuda else {}
    lr = cfg.lr
    if tensor_lr and params:
        options.update({"capturable": True} if on_cuda else {"foreach": False})
        lr = torch.tensor(cfg.lr, dtype=torch.float32, device=params[0].device)
    kinds = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
    if cfg.optimizer not in kinds:
        raise choice_error("optimizer", cfg.optimizer)
    optimizer = kinds[cfg.optimizer](params, lr=lr, betas=cfg.betas,
                                     weight_decay=cfg.weight_decay, **options)
    keep_lr_kind(optimizer)
    return optimizer


def set_lr(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Sets every group's learning rate to ``value``: in place on a tensor rate (what a captured
    step reads), by assignment on a float one."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)
        else:
            group["lr"] = value


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The first group's learning rate as a float (for records), whether it is a tensor or not."""
    lr = optimizer.param_groups[0]["lr"]
    return float(lr) if isinstance(lr, torch.Tensor) else lr


def keep_lr_kind(optimizer: torch.optim.Optimizer) -> None:
    """After ``optimizer.load_state_dict`` each group's rate keeps the kind it was built with: a
    saved float becomes this optimizer's tensor again (on its device), a saved tensor (perhaps
    loaded onto another device) a float for a float optimizer; the value is the saved one."""
    kinds = [group["lr"] for group in optimizer.param_groups]

    def restore_kind(opt) -> None:
        for group, built in zip(opt.param_groups, kinds, strict=True):
            value = float(group["lr"])
            if isinstance(built, torch.Tensor):
                built.fill_(value)
                group["lr"] = built
            else:
                group["lr"] = value

    optimizer.register_load_state_dict_post_hook(restore_kind)


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
