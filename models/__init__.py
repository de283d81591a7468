"""Spatiotemporal predictors: one file per model family, registered by name."""
from .base import Prediction, RecurrentPredictor
from .registry import (
    ModelSpec,
    UnknownModelError,
    create_model,
    get_spec,
    list_models,
    parameter_count,
    register_model,
    unavailable,
)

__all__ = [
    "ModelSpec",
    "Prediction",
    "RecurrentPredictor",
    "UnknownModelError",
    "create_model",
    "get_spec",
    "list_models",
    "parameter_count",
    "register_model",
    "unavailable",
]
