"""Mixed precision: the autocast context for a mode, and the label a record gives it."""
from __future__ import annotations

import contextlib

import torch

from .choices import unknown_choice


def precision_label(device: torch.device, cfg) -> str:
    """How the arithmetic was done: the autocast mode, and TF32 where it applies (CUDA)."""
    return cfg.amp + ("+tf32" if device.type == "cuda" and cfg.tf32 else "")


def describe_precision(label: str) -> str:
    """A precision label in words, for messages: 'none' -> 'float32', 'bf16+tf32' -> 'bf16
    autocast, TF32'."""
    amp, _, tf32 = label.partition("+")
    words = "float32" if amp == "none" else f"{amp} autocast"
    return words + (", TF32" if tf32 else "")


# The one definition of the autocast modes (bench.config.CHOICES["amp"] takes it from here).
AMP_MODES = ("none", "bf16", "fp16")


def autocast(device: torch.device, amp: str):
    """The autocast context for ``amp`` (one of ``AMP_MODES``); fp16 is CUDA-only."""
    if amp not in AMP_MODES:
        raise unknown_choice("amp mode", amp, AMP_MODES)
    if amp == "none":
        return contextlib.nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp 'fp16' needs a CUDA device; use 'bf16' on a CPU")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
