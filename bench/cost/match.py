"""Size matching (``--match params|flops=<N|MODEL>``): every model scaled to one size.

Each registered model names the constructor argument that sets its width (``width_arg`` in
``register_model``). Matching searches that integer for the count closest to the target:
parameters counted on the meta device (nothing allocated), or the FLOPs of one test rollout at
batch 1 counted by PyTorch's flop counter (``bench.cost.flops``' ``gmacs_torch`` x 2), on the meta
device too where the model allows it. Both counts grow with the width, so the search doubles the
width until the count reaches the target, then bisects for the first width that does, and keeps
whichever of it and the width below is closer. A width the model rejects (e.g. a channel count a
GroupNorm cannot split) is skipped for the next one it accepts. A model without a width argument
runs at its own size and its record says so, as does a model whose work no FLOP counter sees
(``counts_operations = False``, e.g. optical_flow): its achieved FLOPs are None, not 0.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

import models

from .flops import counts_operations

KINDS = {"params": "parameters", "flops": "FLOPs of one test rollout at batch 1"}
MAX_WIDTH = 1 << 16
_SKIP = 64  # how many rejected widths in a row are skipped before the search gives up


@dataclass(frozen=True)
class MatchTarget:
    by: str  # params | flops
    value: float | None  # a number, or None when set by a reference model
    model: str | None = None

    def __str__(self) -> str:
        return f"{self.by}={self.model if self.model else f'{self.value:g}'}"

    def as_dict(self) -> dict:
        return asdict(self)


def parse_match(text: str) -> MatchTarget:
    """``params=2e6``, ``params=modernn``, ``flops=1e9`` or ``flops=convlstm``."""
    kind, sep, raw = text.partition("=")
    accepted = ("accepted: params=<N|MODEL> or flops=<N|MODEL>, e.g. params=modernn, "
                "params=1.5e6, flops=2e9")
    kind, raw = kind.strip(), raw.strip()
    if not sep or kind not in KINDS or not raw:
        raise ValueError(f"--match {text!r}: unknown target; {accepted}")
    try:
        value = float(raw)
    except ValueError:
        try:
            models.get_spec(raw)
        except KeyError as error:
            raise ValueError(f"--match {text!r}: {error}; {accepted}") from None
        return MatchTarget(kind, None, raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"--match {text!r}: {raw!r} is not a positive number; {accepted}")
    return MatchTarget(kind, value)


def rollout_flops(name: str, config: dict, in_len: int, out_len: int) -> float | None:
    """FLOPs (2 per multiply-add) of one test rollout at batch 1, PyTorch's flop counter; None
    for a model that computes outside torch (``counts_operations = False``)."""
    shape = (1, in_len, config.get("channels", 1), config.get("height", 64),
             config.get("width", 64))
    for device in ("meta", "cpu"):  # meta: no memory, no arithmetic; some models need values
        try:
            with torch.device(device):
                model = models.create_model(name, **config).eval()
                frames = torch.rand(shape)
            if not counts_operations(model):
                return None  # no counter sees its work: not a count of 0
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model(frames, in_len, out_len)
            return float(counter.get_total_flops())
        except Exception:
            if device == "cpu":
                raise
    raise AssertionError("unreachable")


def _flops_counted(name: str, config: dict) -> bool:
    """Whether a FLOP counter sees ``name``'s work (:func:`counts_operations` of the model built
    on the meta device)."""
    try:
        with torch.device("meta"):
            model = models.create_model(name, **config)
    except Exception:  # a model that needs values to be built computes in torch
        return True
    return counts_operations(model)


def size(by: str, name: str, config: dict, in_len: int, out_len: int) -> float | None:
    if by == "params":
        return float(models.parameter_count(name, **config))
    return rollout_flops(name, config, in_len, out_len)


def match_width(name: str, config: dict, target: float, by: str, in_len: int,
                out_len: int) -> dict:
    """The width of ``name`` whose size is closest to ``target``; a record-ready dict."""
    spec = models.get_spec(name)
    arg = spec.width_arg
    if by == "flops" and not _flops_counted(name, config):
        return {"by": by, "target": target, "scalable": False, "width_arg": arg, "achieved": None,
                "note": f"model {name!r} computes outside torch: no FLOP counter sees its work, "
                        "so it cannot be sized by FLOPs; it runs at its own size"}
    if arg is None or not isinstance(config.get(arg), int):
        return {"by": by, "target": target, "scalable": False, "width_arg": arg,
                "achieved": size(by, name, config, in_len, out_len),
                "note": f"model {name!r} declares no width argument (width_arg); it runs at its "
                        "own size"}
    sizes: dict[int, float | None] = {}

    def at(width: int) -> float | None:
        if width not in sizes:
            try:
                sizes[width] = size(by, name, {**config, arg: width}, in_len, out_len)
            except Exception:  # a width this model rejects
                sizes[width] = None
        return sizes[width]

    def valid_from(width: int, step: int) -> int | None:
        """The first accepted width from ``width`` on, going up (step 1) or down (step -1)."""
        for w in range(width, width + step * _SKIP, step):
            if 1 <= w <= MAX_WIDTH and at(w) is not None:
                return w
        return None

    hi = valid_from(max(1, config[arg]), 1)
    if hi is None:
        raise ValueError(f"model {name!r}: no {arg} near {config[arg]} builds")
    while at(hi) < target and hi < MAX_WIDTH:
        hi = valid_from(min(MAX_WIDTH, hi * 2), 1) or MAX_WIDTH
    def reaches(width: int) -> bool:  # monotone in width: the next accepted width's size
        w = valid_from(width, 1)
        return w is None or at(w) >= target

    lo = 1  # bisect for the first width whose (next accepted) size reaches the target
    while lo < hi:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid + 1
    best = valid_from(lo, 1) or hi
    below = valid_from(best - 1, -1) if best > 1 else None
    if below is not None and abs(at(below) - target) < abs(at(best) - target):
        best = below
    achieved = at(best)
    return {"by": by, "target": target, "scalable": True, "width_arg": arg,
            "default_width": config[arg], "width": best, "achieved": achieved,
            "relative_error": achieved / target - 1}
