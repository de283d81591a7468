"""What the loop owns: scheduled sampling masks and the training loss, built with tensor ops."""
from __future__ import annotations

import torch

from models import Prediction

from .config import TrainConfig


def sampling_eta(step: int, cfg: TrainConfig) -> float:
    """Probability of feeding the true frame after the input window at iteration ``step``."""
    if cfg.sampling == "none":
        return 0.0
    if cfg.sampling == "linear":
        return max(0.0, 1.0 - step / max(1, cfg.sampling_steps))
    raise ValueError(f"unknown sampling {cfg.sampling!r}; accepted: linear, none")


def truth_mask(
    step: int, cfg: TrainConfig, batch: int, out_len: int, generator: torch.Generator, device
) -> torch.Tensor | None:
    """One Bernoulli(eta) choice per (sequence, step after the input window), or None if eta is 0."""
    eta = sampling_eta(step, cfg)
    if eta <= 0.0 or out_len < 2:
        return None
    draws = torch.rand((batch, out_len - 1), generator=generator)
    return (draws < eta).to(device)


def sequence_loss(pred: Prediction, frames: torch.Tensor, in_len: int, cfg: TrainConfig):
    """The training loss over predicted future frames (and warm-up frames, as the authors do)."""
    out_len = pred.future.shape[1]
    outputs, targets = [pred.future], [frames[:, in_len : in_len + out_len]]
    if cfg.warmup_loss_skip is not None and pred.warmup is not None:
        skip = cfg.warmup_loss_skip
        outputs.insert(0, pred.warmup[:, skip:])
        targets.insert(0, frames[:, skip + 1 : in_len])
    error = torch.cat(outputs, 1).float() - torch.cat(targets, 1).float()
    if cfg.loss == "mse+l1":
        loss = (error.square().sum() + error.abs().sum()) / 4
    elif cfg.loss == "mse":
        loss = error.square().mean()
    else:
        raise ValueError(f"unknown loss {cfg.loss!r}; accepted: mse+l1, mse")
    if pred.aux_loss is not None:
        loss = loss + pred.aux_loss
    return loss
