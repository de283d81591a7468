"""Operation counts of one test rollout: fvcore (the field's convention) and PyTorch's own counter.

Both count one multiply-add as one ("MACs"): fvcore natively, ``torch.utils.flop_counter`` by
halving its FLOPs. fvcore also counts LayerNorm and some elementwise work; the PyTorch counter
counts matrix products and convolutions only. Operators fvcore does not know are listed, not hidden.
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

with warnings.catch_warnings():  # fvcore's import scripts a helper with the deprecated torch.jit
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated")
    from fvcore.nn import FlopCountAnalysis


class _Rollout(torch.nn.Module):
    """Binds the integer arguments so that fvcore can trace ``model(frames)``."""

    def __init__(self, model, in_len: int, out_len: int):
        super().__init__()
        self.model, self.in_len, self.out_len = model, in_len, out_len

    def forward(self, frames):
        return self.model(frames, self.in_len, self.out_len).future


def counts_operations(model: torch.nn.Module) -> bool:
    """False for a model that computes outside torch (it sets ``counts_operations = False``, e.g.
    optical_flow's NumPy/OpenCV): no FLOP counter sees its work, so its count is not 0 but none."""
    return getattr(model, "counts_operations", True) is not False


@torch.no_grad()
def rollout_macs(model, shape: tuple[int, int, int], in_len: int, out_len: int) -> dict:
    """Counts for one whole test rollout (``in_len`` frames in, ``out_len`` out) at batch 1.

    A model that computes outside torch (``counts_operations = False``, e.g. optical_flow's
    NumPy/OpenCV) cannot be counted by either tool: its counts are None, with the reason."""
    if not counts_operations(model):
        return {"gmacs_fvcore": None, "gmacs_torch": None, "gmacs_fvcore_per_frame": None,
                "gmacs_torch_per_frame": None,
                "gmacs_not_counted": f"{type(model).__name__} computes outside torch "
                                     "(fvcore and PyTorch's counter see none of its work)"}
    rollout = _Rollout(copy.deepcopy(model).cpu().eval(), in_len, out_len)
    frames = torch.rand(1, in_len, *shape)
    analysis = FlopCountAnalysis(rollout, (frames,))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    fvcore_total = analysis.total()
    with FlopCounterMode(display=False) as counter:
        rollout(frames)
    torch_macs = counter.get_total_flops() / 2
    return {
        "gmacs_fvcore": fvcore_total / 1e9,
        "gmacs_torch": torch_macs / 1e9,
        "gmacs_fvcore_per_frame": fvcore_total / 1e9 / out_len,
        "gmacs_torch_per_frame": torch_macs / 1e9 / out_len,
        "fvcore_skipped_ops": dict(sorted(analysis.unsupported_ops().items())),
    }


def training_flops(step, *args) -> float:
    """FLOPs (2 per multiply-add) of one call of ``step(*args)``, backward passes included."""
    with FlopCounterMode(display=False) as counter:
        step(*args)
    return float(counter.get_total_flops())
