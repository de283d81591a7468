"""The model registry: register a constructor by name, list with wildcards, build by name.

A model file registers its constructors with ``@register_model``; every module in this
package is imported on first use, and installed distributions may add more through the
``stbench.models`` entry-point group (the entry point names a module to import).
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

import torch.nn as nn

ENTRY_POINT_GROUP = "stbench.models"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    paper: str
    build: Callable[..., nn.Module]
    module: str
    # Per-preset constructor arguments that scale the model down (e.g. {"smoke": {"hid_S": 8}});
    # they take precedence over a preset's generic scaling ({"hidden": 32, "layers": 2}).
    preset_args: dict[str, dict] = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}
_discovered = False


def register_model(name: str, *, family: str, paper: str, preset_args: dict | None = None):
    """Decorator: register ``build(**config) -> nn.Module`` under ``name``.

    ``preset_args`` maps a preset name to constructor arguments that scale the model down for it.
    """

    def decorate(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.module != build.__module__:
            raise ValueError(
                f"model name {name!r} is registered twice: by {existing.module} and {build.__module__}"
            )
        _REGISTRY[name] = ModelSpec(name, family, paper, build, build.__module__, dict(preset_args or {}))
        return build

    return decorate


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()


def refresh() -> None:
    """Look again for model files and entry points (for tests and long sessions)."""
    global _discovered
    _discovered = False
    importlib.invalidate_caches()
    _discover()


def list_models(patterns: str | list[str] = "*") -> list[str]:
    """Registered names matching any of the shell-style ``patterns`` ('all' means '*')."""
    _discover()
    if isinstance(patterns, str):
        patterns = [patterns]
    names = sorted(_REGISTRY)
    chosen: list[str] = []
    for pattern in patterns:
        pattern = "*" if pattern == "all" else pattern
        matches = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not matches:
            raise UnknownModelError(_unknown_message(pattern))
        chosen += [m for m in matches if m not in chosen]
    return chosen


def get_spec(name: str) -> ModelSpec:
    _discover()
    if name not in _REGISTRY:
        raise UnknownModelError(_unknown_message(name))
    return _REGISTRY[name]


def create_model(name: str, **config) -> nn.Module:
    """Build the registered model ``name`` with keyword overrides of its default configuration."""
    return get_spec(name).build(**config)


def _unknown_message(name: str) -> str:
    known = sorted(_REGISTRY)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown model {name!r}{hint or ';'} known: {', '.join(known)}"


class UnknownModelError(KeyError):
    """An unknown model name; the message lists the closest registered names."""

    def __str__(self) -> str:
        return str(self.args[0])
