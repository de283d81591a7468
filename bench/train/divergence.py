"""Divergence: a training run whose loss, or whose model's test metrics, became NaN or infinite.

One error for both, so that a cell's record names it the same way (``DivergedError: ...``)
whether the loop saw the loss go non-finite or the test of the trained (or loaded) model did.
"""
from __future__ import annotations

import math


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


def check_finite_metrics(result: dict) -> None:
    """Raises DivergedError when a headline test metric is NaN or infinite."""
    if not all(math.isfinite(v) for v in result["headline"].values()
               if isinstance(v, (int, float))):
        raise DivergedError(f"non-finite test metrics {result['headline']}")

