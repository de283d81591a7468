"""Whether a configuration's training iteration can be captured in a CUDA graph, and if not, why.

A captured iteration (bench.train.graph) records every kernel of both passes once and replays
them; anything that needs the host in the middle of an iteration, or kernels that differ from one
iteration to the next, cannot be captured. The configurations refused here run eager (one log
line says why; the record's ``device_settings.cuda_graph_fallback`` too):

- a device other than CUDA (there are no CUDA graphs on a CPU);
- ``amp=fp16``: the loss scaler skips steps and changes its scale on the host after reading
  whether the gradients were finite;
- ``compile`` with ``compile_mode`` reduce-overhead or max-autotune: those already capture CUDA
  graphs of their own (torch.compile's cudagraph trees), which cannot nest in an outer capture;
- data parallelism (DDP): its gradient all-reduce hooks and bucketing are not captured here;
- ``lr_schedule=onecycle``: torch's OneCycleLR also cycles Adam's beta1, assigning a float into
  each group's ``betas`` every iteration, which a captured step would freeze at its first value.

Gradient clipping is captured (``clip_grad_norm_`` computes the norm and the scale on the device
without reading them). A model whose own step reads tensors on the host (data-dependent Python
control flow) would break the capture: none of the registered models does in training (found
with ``torch.cuda.set_sync_debug_mode`` on a GPU: tests/gpu/run_gpu_checks.sh); if one does, the
capture error is caught and the cell runs eager (bench.train.graph).
"""
from __future__ import annotations

import torch

from . import distributed


def graph_fallback(device: torch.device, cfg, parallel: bool | None = None) -> str | None:
    """Why ``cfg`` (a TrainConfig with ``cuda_graph`` on) cannot capture its training iteration on
    ``device``; None when it can. ``parallel``: whether training is data parallel (default: a
    torch.distributed group is initialised)."""
    parallel = distributed.is_distributed() if parallel is None else parallel
    if torch.device(device).type != "cuda":
        return f"device {torch.device(device).type}: CUDA graphs need a CUDA device"
    if cfg.amp == "fp16":
        return "amp=fp16: the loss scaler decides on the host whether to step"
    if cfg.compile and cfg.compile_mode != "default":
        return (f"compile_mode={cfg.compile_mode}: torch.compile captures CUDA graphs of its own, "
                "which cannot nest in the iteration's")
    if parallel:
        return "data parallel (DDP): its gradient all-reduce is not captured"
    if cfg.lr_schedule == "onecycle":
        return ("lr_schedule=onecycle: it cycles Adam's beta1 as a float each iteration, which "
                "a captured step would freeze")
    return None


def graph_settings(device: torch.device, cfg) -> dict:
    """The record's ``device_settings`` entries: whether the captured step is asked for and in
    use, and if asked for but not in use, why."""
    reason = graph_fallback(device, cfg) if cfg.cuda_graph else None
    return {"cuda_graph": bool(cfg.cuda_graph) and reason is None, "cuda_graph_fallback": reason}
