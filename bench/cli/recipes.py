"""``--list-models --preset NAME`` for a preset with per-model recipes (``openstl``): each model's
training options and sizes under it, with the source each recipe was copied from."""
from __future__ import annotations

import json

import models

from ..config import Preset

# The training options a recipe table shows (the preset's shared ones are in its header).
SHOWN = ("optimizer", "lr", "weight_decay", "lr_schedule", "epochs", "steps_per_epoch",
         "batch_size", "loss", "reverse_pass", "sampling")
# The options each sampling schedule reads (the others are shown only where they apply).
SAMPLING_OPTIONS = {"linear": ("sampling_steps",), "openstl": ("sampling_steps",),
                    "reverse": ("reverse_steps", "reverse_exp_alpha"), "none": ()}


def recipe_row(row: dict, preset: Preset) -> dict:
    """``row`` (name, family, params, paper) under ``preset``: its recipe, the training options
    it trains with, and its parameters at the recipe's sizes (64x64x1 frames, 10 -> 10)."""
    name = row["name"]
    effective, recipe = preset.for_model(name), preset.recipe(name)
    cfg = effective.train
    train = {key: getattr(cfg, key) for key in SHOWN + SAMPLING_OPTIONS[cfg.sampling]}
    sizes = dict(recipe.model)
    return {**row, "params": models.parameter_count(name, **sizes), "train": train,
            "model": sizes, "source": recipe.source, "note": recipe.note}


def recipes_listing(rows: list[dict], preset: Preset, fmt: str) -> str:
    """The table (or JSON) of every model's recipe under ``preset``."""
    rows = [recipe_row(row, preset) for row in rows]
    if fmt == "json":
        return json.dumps({"preset": preset.name, "description": preset.description,
                           "models": rows}, indent=2, default=list)
    lines = [f"preset {preset.name}: {preset.description}", ""]
    for row in rows:
        train = ", ".join(f"{key} {_shown(value)}" for key, value in row["train"].items())
        sizes = ", ".join(f"{key}={_shown(value)}" for key, value in row["model"].items())
        lines += [f"{row['name']} ({row['family']}, {row['params']:,} parameters)",
                  f"  train: {train}",
                  f"  model: {sizes or 'its default sizes'}",
                  f"  source: {row['source'] or 'none (no published recipe)'}"]
        if row["note"]:
            lines.append(f"  note: {row['note']}")
    return "\n".join(lines)


def _shown(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)
