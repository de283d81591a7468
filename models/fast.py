"""Fast paths: exact reformulations of a model's computation, switched on in place, per model.

A fast path computes the same function with fewer or larger kernels (e.g. a LayerNorm over
whole ``[C, H, W]`` maps through reductions that use many thread blocks, or several
convolutions of one input as one). It never changes the parameters, their names or what an
optimizer sees, so checkpoints, fixtures and state dicts stay interchangeable; only float
rounding may differ.

A module offers a fast path by listing its name in a ``fast_paths`` class attribute and
implementing ``set_fast_path(name, on)``. ``FAST_PATHS`` names every fast path a model may
offer, with what it does; ``supported`` says which ones a model offers, ``enable`` switches
them on or off.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch

# name -> what it does (shown by ``verify`` and in records' device settings); the building
# blocks are in models/fused.py
FAST_PATHS: dict[str, str] = {
    "fused_norm": "LayerNorms over whole [C, H, W] maps through another reduction "
                  "(models.fused.NORM_IMPL: a group norm of 1 group, or per channel then "
                  "combined) and the elementwise affine",
    "fused_convs": "several convolutions of one input, or of same-shape inputs, as one "
                   "convolution whose kernel is assembled from the originals at each forward",
}


def _offering(model: torch.nn.Module, name: str):
    return [m for m in model.modules() if name in getattr(m, "fast_paths", ())]


def supported(model: torch.nn.Module) -> list[str]:
    """The fast paths some module of ``model`` offers, in ``FAST_PATHS`` order."""
    return [name for name in FAST_PATHS if _offering(model, name)]


def enable(model: torch.nn.Module, names: Iterable[str], on: bool = True) -> list[str]:
    """Switches the fast paths ``names`` on (or off) in every module of ``model`` that offers
    them; returns the names that applied. An unknown name is a ValueError naming the known."""
    applied = []
    for name in names:
        if name not in FAST_PATHS:
            known = ", ".join(FAST_PATHS) or "none yet"
            raise ValueError(f"unknown fast path {name!r}; known: {known}")
        modules = _offering(model, name)
        for module in modules:
            module.set_fast_path(name, on)
        if modules:
            applied.append(name)
    return applied
