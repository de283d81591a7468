"""Device settings and compilation: what makes the same loop fast on a GPU."""
from __future__ import annotations

import torch

from models.base import RecurrentPredictor

from .config import TrainConfig


def configure_device(device: torch.device, cfg: TrainConfig) -> dict:
    """CUDA: cuDNN autotuning on, TF32 for float32 matmuls and convolutions as ``cfg.tf32`` says.
    Returns the settings in force, for the record's device section."""
    if device.type != "cuda":
        return {"tf32": False, "cudnn_benchmark": False, "compile": cfg.compile,
                "compile_mode": cfg.compile_mode if cfg.compile else None}
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
    torch.backends.cudnn.allow_tf32 = cfg.tf32
    return {"tf32": cfg.tf32, "cudnn_benchmark": True, "compile": cfg.compile,
            "compile_mode": cfg.compile_mode if cfg.compile else None}


def precision_label(device: torch.device, cfg: TrainConfig) -> str:
    """How the arithmetic was done: the autocast mode, and TF32 where it applies (CUDA)."""
    return cfg.amp + ("+tf32" if device.type == "cuda" and cfg.tf32 else "")


def describe_precision(label: str) -> str:
    """A precision label in words, for messages: 'none' -> 'float32', 'bf16+tf32' -> 'bf16
    autocast, TF32'."""
    amp, _, tf32 = label.partition("+")
    words = "float32" if amp == "none" else f"{amp} autocast"
    return words + (", TF32" if tf32 else "")


def compile_model(model: torch.nn.Module, mode: str = "default") -> torch.nn.Module:
    """``torch.compile`` what the model runs per step, in place: each recurrent cell's ``step``
    (the rollout around it stays eager: its Python loop and scheduled-sampling choices would
    otherwise be traced into every graph), or the whole forward of a feed-forward model.
    Parameters and state-dict keys are unchanged, so checkpoints stay interchangeable."""
    recurrent = [m for m in model.modules() if isinstance(m, RecurrentPredictor)]
    targets = [(m, "step") for m in recurrent] or [(model, "forward")]
    for module, name in targets:
        setattr(module, name, torch.compile(getattr(module, name), mode=mode, dynamic=False))
    return model
