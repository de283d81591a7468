"""The training loss over the predicted frames, as the configuration names it."""
from __future__ import annotations

import torch

from models import Prediction

from ..config import TrainConfig, choice_error


def sequence_loss(pred: Prediction, frames: torch.Tensor, in_len: int, cfg: TrainConfig):
    """The training loss over predicted future frames (and warm-up frames, as the authors do)."""
    out_len = pred.future.shape[1]
    outputs, targets = [pred.future], [frames[:, in_len : in_len + out_len]]
    if cfg.warmup_loss_skip is not None and pred.warmup is not None:
        skip = cfg.warmup_loss_skip
        outputs.insert(0, pred.warmup[:, skip:])
        targets.insert(0, frames[:, skip + 1 : in_len])
    # at least float32 (autocast's half-precision outputs are summed in float32); float64 stays
    dtype = torch.promote_types(pred.future.dtype, torch.float32)
    error = torch.cat(outputs, 1).to(dtype) - torch.cat(targets, 1).to(dtype)
    if cfg.loss == "mse+l1":
        loss = (error.square().sum() + error.abs().sum()) / 4
        # Auxiliary losses (PredRNN-V2's decoupling, TAU's DDR, PhyDNet's moments) are weighted
        # against a per-element mean loss in their papers; against a summed loss they are scaled
        # by the element count so that they keep that relative weight.
        aux_scale = error.numel()
    elif cfg.loss == "mse":
        loss = error.square().mean()
        aux_scale = 1
    else:
        raise choice_error("loss", cfg.loss)
    if pred.aux_loss is not None:
        loss = loss + aux_scale * pred.aux_loss
    return loss
