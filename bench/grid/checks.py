"""Guards around a benchmark run: input validation before training, safe path components,
grid sharding, and recovery from a failed cell (out of memory, divergence)."""
from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

from ..config import CHOICES, TrainConfig, check_finite
from ..runtime.choices import accepted

AT_LEAST = {"epochs": 1, "steps_per_epoch": 1, "batch_size": 1, "eval_batch_size": 1,
            "checkpoint_every": 1, "checkpoint_every_steps": 0, "sampling_steps": 0,
            "checkpoint_every_seconds": 0, "sync_every": 1}

# ---------------------------------------------------------------------------- seeds
MAX_SEED = 2**32 - 1  # NumPy's global seed (set per cell) takes 0 ... 2**32 - 1


def check_seeds(seeds: list[int]) -> None:
    """Every ``--seeds`` value one NumPy and torch both take, checked before any work."""
    for seed in seeds:
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"--seeds {seed}: accepted: integers from 0 to {MAX_SEED}")


# ---------------------------------------------------------------------------- overrides
def _type_name(kind) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        return f"a list of {len(args)} {' and '.join(_type_name(a) for a in args)} values"
    if type(None) in args:
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " or null"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        kind, str(kind))


def _coerce(value: Any, kind) -> Any:
    """``value`` as ``kind`` (int, float, bool, str, tuple[...], X | None), or TypeError."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if type(None) in args:
        if value is None:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)))
    if origin is tuple:
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
        raise TypeError
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if kind is str:
        if isinstance(value, str):
            return value
        raise TypeError
    return value


def check_train_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """``--set`` values checked against TrainConfig's field types and allowed values; returns
    them coerced (3 -> 3.0 for a float, lists -> tuples); a bad value is a ValueError naming it."""
    hints = typing.get_type_hints(TrainConfig)
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    checked = {}
    for key, value in overrides.items():
        if key not in hints:
            raise ValueError(f"--set {key}: unknown option {key!r}; known: {', '.join(fields)}")
        shown = value if isinstance(value, str) else _json(value)
        check_finite(f"--set {key}", value)
        try:
            value = _coerce(value, hints[key])
        except TypeError:
            raise ValueError(f"--set {key}={shown}: expected {_type_name(hints[key])}") from None
        if key in CHOICES and value not in CHOICES[key]:
            raise ValueError(f"--set {key}={shown}: {accepted(CHOICES[key])}")
        if key in AT_LEAST and value < AT_LEAST[key]:
            raise ValueError(f"--set {key}={shown}: must be >= {AT_LEAST[key]}")
        checked[key] = value
    return checked


def _json(value) -> str:
    import json
    return json.dumps(value)


def check_model_args(name: str, build, user_args: dict[str, Any]) -> None:
    """``--model-arg`` values of the type of the constructor's default (an int for ``hidden=64``)."""
    parameters = inspect.signature(build).parameters
    for key, value in user_args.items():
        if key not in parameters:
            raise ValueError(f"--model-arg {key}: model {name!r} takes no argument {key!r}; it "
                             f"takes: {', '.join(parameters)}")
        check_finite(f"--model-arg {key}", value)
        default = parameters[key].default
        if default is inspect.Parameter.empty or default is None:
            continue
        try:
            _coerce(value, type(default))
        except TypeError:
            shown = value if isinstance(value, str) else _json(value)
            raise ValueError(f"--model-arg {key}={shown}: model {name!r} expects "
                             f"{_type_name(type(default))} (default {default!r})") from None
