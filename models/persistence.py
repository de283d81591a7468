"""Persistence: repeat the last seen frame. The no-training reference point in every table."""
from __future__ import annotations

import torch.nn as nn

from .base import Prediction, check_call
from .registry import register_model


class Persistence(nn.Module):
    def forward(self, frames, in_len: int, out_len: int, truth_mask=None) -> Prediction:
        check_call(frames, in_len, out_len, truth_mask)
        last = frames[:, in_len - 1 : in_len]
        return Prediction(future=last.expand(-1, out_len, -1, -1, -1).clone())


@register_model("persistence", family="baseline", paper="repeat the last input frame (no training)")
def persistence(channels: int = 1, height: int = 64, width: int = 64) -> nn.Module:
    return Persistence()
