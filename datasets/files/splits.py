"""Splitting a dataset's sequences (or segments of them) into train / val / test, in words too."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .config import SequenceFileConfig

if TYPE_CHECKING:
    from ..core.windows import FrameStore


def split_units(config: SequenceFileConfig, units: list, roles: list) -> dict[str, list]:
    """Units per split: by file role where files are given per split, else by fraction."""
    if config.paths:
        splits = {name: [u for u, r in zip(units, roles, strict=True) if r == name]
                  for name in ("train", "val", "test")}
        if splits["val"] or not config.split.get("val", 0.1):
            return splits
        rest = _divide(config, splits["train"], {"val": config.split.get("val", 0.1)})
        return {"train": rest["train"], "val": rest["val"], "test": splits["test"]}
    return _divide(config, units, {"test": config.split.get("test", 0.2),
                                   "val": config.split.get("val", 0.1)})


def _divide(config: SequenceFileConfig, units: list, fractions: dict) -> dict[str, list]:
    method = config.split.get("method", "ordered")
    if method not in ("ordered", "shuffled"):
        raise ValueError(f"dataset {config.name!r}: split.method must be ordered or shuffled; "
                         f"got {method!r}")
    order = list(range(len(units)))
    if method == "shuffled":
        order = np.random.default_rng(config.split.get("seed", 0)).permutation(len(units)).tolist()
    out = {"train": [], "val": [], "test": []}
    end = len(order)
    for name in ("test", "val"):  # taken from the end: test last, validation just before it
        fraction = fractions.get(name)
        if fraction is None:
            continue
        if not 0 <= fraction < 1:
            raise ValueError(f"dataset {config.name!r}: split.{name} must be in [0, 1); "
                             f"got {fraction!r}")
        count = max(1, round(fraction * len(units))) if fraction > 0 else 0
        count = min(count, max(end - 1, 0))
        out[name] = sorted(units[i] for i in order[end - count:end])
        end -= count
    out["train"] = sorted(units[i] for i in order[:end])
    return out


def split_ranges(units: list, store: FrameStore, config: SequenceFileConfig) -> list:
    """Sequence ids of a split ([id, start, stop] where sequences are cut into segments)."""
    if not config.segment_length:
        return compact_ids([seq for seq, _, _ in units])
    return [[seq, a, b] for seq, a, b in units]


def compact_ids(ids: list[int]) -> str:
    """Sorted ids as ranges: [0, 1, 2, 5] -> '0-2,5' (see :func:`expand_ids`)."""
    parts, ids = [], sorted(ids)
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(parts)


def expand_ids(text: str) -> list[int]:
    """The inverse of :func:`compact_ids`."""
    out = []
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


def split_rule(config: SequenceFileConfig) -> str:
    """How ``config`` splits its sequences, in words, for the record's ``split_rule``."""
    if config.paths:
        return "by file: " + ", ".join(f"{k}={v}" for k, v in config.paths.items()) + (
            "" if "val" in config.paths else "; validation taken from the training sequences")
    s = config.split
    return (f"by sequence, {s.get('method', 'ordered')}"
            + (f" (seed {s.get('seed', 0)})" if s.get("method") == "shuffled" else "")
            + f": test {s.get('test', 0.2)}, validation {s.get('val', 0.1)} of the sequences, "
            "validation taken from the training sequences")
