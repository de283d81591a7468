"""Devices: choosing one, its settings (cuDNN autotuning, TF32), moving tensors to it, and waiting
for its queued work."""
from __future__ import annotations

import torch

from .graphs import graph_settings


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; otherwise the named device, checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use cpu or auto")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so that a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host to device without making the host wait: on CUDA from pinned memory, non-blocking."""
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def configure_device(device: torch.device, cfg) -> dict:
    """CUDA: cuDNN autotuning on, TF32 for float32 matmuls and convolutions as ``cfg.tf32`` says.
    Returns the settings in force, for the record's device section: those and compilation, the
    captured step (bench.runtime.graphs), the fast paths asked for (``fused_norm``,
    ``fused_convs``) and ``fast_paths``, those that applied to the model, None until the model
    is set up (bench.grid.cells fills it in)."""
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
    return {"tf32": cfg.tf32 if cuda else False, "cudnn_benchmark": cuda, "compile": cfg.compile,
            "compile_mode": cfg.compile_mode if cfg.compile else None,
            **graph_settings(device, cfg),
            "fused_norm": cfg.fused_norm, "fused_convs": cfg.fused_convs, "fast_paths": None}
