"""``--match``: the size every model of the grid is scaled to, and the width that brings each
model closest to it (bench.cost.match)."""
from __future__ import annotations

import inspect

import models

from ..cost.match import match_width, size
from .request import RunRequest, model_config


def match_target(request: RunRequest, data) -> float:
    """The size ``--match`` asks for: a number, or the reference model's at this data/preset."""
    target = request.match
    if target.model is None:
        return target.value
    spec = models.get_spec(target.model)
    accepted = inspect.signature(spec.build).parameters
    own = {k: v for k, v in request.model_args.items() if k in accepted}
    preset = request.preset.for_model(target.model)
    value = size(target.by, target.model, model_config(target.model, preset, data, own),
                 data.in_len, data.out_len)
    if value is None:
        raise ValueError(f"--match {str(target)!r}: {target.model!r} computes outside torch, so "
                         "its FLOPs are not counted; accepted: a model whose FLOPs are counted, "
                         f"--match params={target.model}, or a number")
    if value <= 0:
        raise ValueError(f"--match {str(target)!r}: {target.model!r} has no {target.by} to match (it "
                         "counts 0); accepted: a model with parameters, or a number")
    return value


def match_sizes(request: RunRequest, data, log=print) -> dict[str, dict]:
    """Per model: the width that brings its size closest to ``request.match`` (bench.cost.match)."""
    target, value = request.match, match_target(request, data)
    unit = "parameters" if target.by == "params" else "FLOPs per test rollout at batch 1"
    log(f"match {target}: target {value:,.0f} {unit}")
    matched = {}
    for name in dict.fromkeys(request.models):
        config = model_config(name, request.preset.for_model(name), data, request.model_args)
        info = match_width(name, config, value, target.by, data.in_len, data.out_len)
        info["target_from"] = target.model or "number"
        matched[name] = info
        if info["scalable"]:
            log(f"   {name}: {info['width_arg']} {info['default_width']} -> {info['width']}, "
                f"{info['achieved']:,.0f} ({info['relative_error']:+.1%})")
        else:
            achieved = "not counted" if info["achieved"] is None else f"{info['achieved']:,.0f}"
            log(f"   {name}: {info['note']} ({achieved})")
    return matched
