"""Where a record came from: library versions, git commit, device, time."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy as np
import torch

from .clock import now

ROOT = Path(__file__).resolve().parents[2]


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "platform": platform.platform()}


def device_kind(device: torch.device) -> str:
    """The kind of device a measurement belongs to: 'cuda:NVIDIA H100 80GB HBM3', 'cpu:AMD EPYC'."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"{device.type}:{cpu_model()}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({cpu_model()}, {torch.get_num_threads()} threads)"


def run_fields(device: torch.device, cfg) -> dict:
    """What every record states about where and how it ran: the device (and its kind, which is
    part of a cell's key), the precision and device settings of ``cfg`` (a TrainConfig), the
    library versions, the commit and the start time."""
    from .device import configure_device
    from .precision import precision_label

    return {"device": str(device), "device_name": device_name(device),
            "device_kind": device_kind(device), "precision": precision_label(device, cfg),
            "device_settings": configure_device(device, cfg),
            "versions": versions(), "git_commit": git_commit(), "started_at": now()}
