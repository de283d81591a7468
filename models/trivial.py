"""Trivial baselines beside persistence: a blank frame and the mean training frame.

They bound a table from below: a trained model that does not beat the mean frame has learnt
nothing about motion. Neither has parameters, so the loop trains neither; ``MeanFrame`` learns
its one statistic from the training stream through the ``fit_from_data`` hook (models/base.py),
which the harness calls before evaluating any model that defines it.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

from .base import Prediction, check_call
from .registry import register_model


class BlankFrame(nn.Module):
    """Predicts all-zero frames (the background of Moving MNIST)."""

    def forward(self, frames, in_len: int, out_len: int, truth_mask=None) -> Prediction:
        check_call(frames, in_len, out_len, truth_mask)
        b, _, c, h, w = frames.shape
        return Prediction(future=frames.new_zeros((b, out_len, c, h, w)))


class MeanFrame(nn.Module):
    """Predicts the per-pixel mean of the training frames, whatever the input."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels, height, width))
        self.register_buffer("frames_seen", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def fit_from_data(self, batches: Iterable[torch.Tensor]) -> None:
        """The per-pixel mean over every frame of ``batches`` (``[B, T, C, H, W]`` training
        clips, input and future frames alike), accumulated in float64."""
        total, count = torch.zeros(self.mean.shape, dtype=torch.float64), 0
        for batch in batches:
            total += batch.detach().to("cpu", torch.float64).sum(dim=(0, 1))
            count += batch.shape[0] * batch.shape[1]
        if count == 0:
            raise ValueError("fit_from_data got no training batches")
        self.mean.copy_((total / count).to(self.mean.dtype))
        self.frames_seen.fill_(count)

    def forward(self, frames, in_len: int, out_len: int, truth_mask=None) -> Prediction:
        check_call(frames, in_len, out_len, truth_mask)
        b, _, c, h, w = frames.shape
        mean = self.mean.to(frames.dtype)
        return Prediction(future=mean.expand(b, out_len, c, h, w).clone())


@register_model("blank", family="baseline", paper="predict all-zero frames (no training)")
def blank(channels: int = 1, height: int = 64, width: int = 64) -> nn.Module:
    return BlankFrame()


@register_model("mean", family="baseline",
                paper="predict the per-pixel mean training frame (no training)")
def mean(channels: int = 1, height: int = 64, width: int = 64) -> nn.Module:
    return MeanFrame(channels, height, width)
