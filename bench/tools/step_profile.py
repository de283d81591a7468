"""Where one training iteration's time goes: a torch.profiler summary (top kernels, how many
kernels the host launched), written as text for the GPU checks (tests/gpu/run_gpu_checks.sh)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from ..runtime.device import synchronize

# host calls that launch device work: kernels one by one, and whole CUDA graphs
KERNEL_LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")
GRAPH_LAUNCHES = ("cudaGraphLaunch", "cuGraphLaunch")


def profile_iteration(iteration: Callable[[], object], device: torch.device, path: Path,
                      title: str, rows: int = 15) -> dict:
    """Runs ``iteration`` once under torch.profiler and writes to ``path``: ``title``, the counts
    (kernels launched by the host one at a time, graph launches, device events: every kernel and
    copy run, inside graphs too) and the top ``rows`` operators by device time (host time on a
    CPU). Returns the counts."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        iteration()
        synchronize(device)
    events = prof.key_averages()
    counts = {
        "kernel_launches": sum(e.count for e in events if e.key in KERNEL_LAUNCHES),
        "graph_launches": sum(e.count for e in events if e.key in GRAPH_LAUNCHES),
        "device_events": sum(e.count for e in events
                             if e.device_type == torch.autograd.DeviceType.CUDA),
    }
    table = events.table(sort_by="cuda_time_total" if cuda else "cpu_time_total",
                         row_limit=rows, max_name_column_width=60)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\n" + "".join(f"{k}: {v}\n" for k, v in counts.items()) + table)
    return counts
