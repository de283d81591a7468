"""Per-model training recipes: what a preset changes for one model (training options and
constructor arguments), with the source each value was copied from. A preset that holds
recipes (bench.config.Preset.recipes) gives each model its own; the recipe goes into the
record's ``config.recipe`` and so into the cell's config hash."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """``train``: TrainConfig fields; ``model``: constructor arguments; ``source``: where the
    values come from (repository, file, commit, lines), or, for a model with no published
    recipe, ``None`` and ``note`` says how the recipe was chosen; ``note``: what differs from
    the source and why."""

    train: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    note: str = ""

    def as_dict(self) -> dict:
        """The recipe as records keep it (``config.recipe``); tuples become lists (JSON)."""
        return {"source": self.source, "note": self.note,
                "train": {k: list(v) if isinstance(v, tuple) else v for k, v in self.train.items()},
                "model": {k: list(v) if isinstance(v, tuple) else v for k, v in self.model.items()}}

    def line(self) -> str:
        """One line naming the source (or saying there is none) and the note."""
        where = self.source or "no published recipe"
        return f"{where}{'; ' + self.note if self.note else ''}"
