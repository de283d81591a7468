"""Patchify as a wrapper: any model can work on p x p patches folded into channels."""
from __future__ import annotations

import torch
import torch.nn as nn

from .base import Prediction


def patchify(frames: torch.Tensor, patch: int) -> torch.Tensor:
    """``[..., C, H, W]`` -> ``[..., C*p*p, H/p, W/p]``; channel index = (c, dy, dx) row-major."""
    *lead, c, h, w = frames.shape
    if h % patch or w % patch:
        raise ValueError(f"patch size {patch} does not divide the frame size {h}x{w}")
    x = frames.reshape(*lead, c, h // patch, patch, w // patch, patch)
    n = len(lead)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * patch * patch, h // patch, w // patch)


def unpatchify(patches: torch.Tensor, patch: int) -> torch.Tensor:
    """The exact inverse of :func:`patchify`."""
    *lead, cpp, hp, wp = patches.shape
    c = cpp // (patch * patch)
    x = patches.reshape(*lead, c, patch, patch, hp, wp)
    n = len(lead)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c, hp * patch, wp * patch)


class Patched(nn.Module):
    """Runs ``core`` on patchified frames and returns un-patched predictions."""

    def __init__(self, core: nn.Module, patch: int):
        super().__init__()
        if patch < 1:
            raise ValueError(f"patch size must be >= 1; got {patch}")
        self.core = core
        self.patch = patch

    def forward(self, frames, in_len: int, out_len: int, truth_mask=None) -> Prediction:
        if self.patch == 1:
            return self.core(frames, in_len, out_len, truth_mask)
        out = self.core(patchify(frames, self.patch), in_len, out_len, truth_mask)
        warmup = None if out.warmup is None else unpatchify(out.warmup, self.patch)
        return Prediction(unpatchify(out.future, self.patch), warmup, out.aux_loss)


def patched_shape(channels: int, height: int, width: int, patch: int) -> tuple[int, int, int]:
    """The (channels, height, width) a core sees after patchify, with a clear error if p does not divide."""
    if patch < 1 or height % patch or width % patch:
        raise ValueError(
            f"patch size {patch} does not divide the frame size {height}x{width}; "
            "choose a patch size that divides both"
        )
    return channels * patch * patch, height // patch, width // patch
