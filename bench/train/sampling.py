"""What the loop owns: scheduled sampling masks and the training loss, built with tensor ops."""
from __future__ import annotations

import math

import torch

from ..config import TrainConfig, choice_error
from ..runtime.device import to_device


def sampling_eta(step: int, cfg: TrainConfig) -> float:
    """Probability of feeding the true frame after the input window at iteration ``step``."""
    if cfg.sampling == "none":
        return 0.0
    if cfg.sampling == "linear":
        return max(0.0, 1.0 - step / max(1, cfg.sampling_steps))
    if cfg.sampling == "openstl":  # lowered before the draws (openstl/utils/predrnn_utils.py)
        return max(0.0, 1.0 - (step + 1) / max(1, cfg.sampling_steps))
    if cfg.sampling == "reverse":
        start, stop = cfg.reverse_steps
        if step < start:
            return 0.5
        return max(0.0, 0.5 - 0.5 * (step - start) / max(1, stop - start))
    raise choice_error("sampling", cfg.sampling)


def reverse_eta(step: int, cfg: TrainConfig) -> float:
    """Reverse scheduled sampling: probability of the true frame inside the input window."""
    start, stop = cfg.reverse_steps
    if step < start:
        return 0.5
    if step < stop:
        return 1.0 - 0.5 * math.exp(-(step - start) / cfg.reverse_exp_alpha)
    return 1.0


def truth_mask(
    step: int, cfg: TrainConfig, batch: int, in_len: int, out_len: int,
    generator: torch.Generator, device,
) -> torch.Tensor | None:
    """Bernoulli draws saying where to feed true frames (see ``models.base``), or None.

    linear: ``[B, out_len - 1]``, one choice per (sequence, step after the input window).
    reverse: ``[B, in_len + out_len - 2]``, covering the input window as well.
    """
    eta = sampling_eta(step, cfg)
    if cfg.sampling == "reverse":
        draws = torch.rand((batch, in_len + out_len - 2), generator=generator)
        thresholds = torch.full((in_len + out_len - 2,), eta)
        thresholds[: in_len - 1] = reverse_eta(step, cfg)
        return to_device(draws < thresholds, device)
    if eta <= 0.0 or out_len < 2:
        return None
    draws = torch.rand((batch, out_len - 1), generator=generator)
    return to_device(draws < eta, device)


def static_mask(mask: torch.Tensor | None, batch: int, out_len: int, device) -> torch.Tensor:
    """``mask``, or where there is none (sampling has ended, or never began) an all-False mask
    ``[batch, out_len - 1]``: the model's own outputs throughout, the same values and gradients
    as no mask; a captured step (bench.train.graph) always reads a mask of one shape."""
    if mask is not None:
        return mask
    return torch.zeros((batch, max(0, out_len - 1)), dtype=torch.bool, device=device)
