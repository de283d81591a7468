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
import importlib.util
import pkgutil
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
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
    # The constructor argument that sets the model's width (``--match`` scales it); None: the
    # model cannot be scaled and runs at its own size.
    width_arg: str | None = None
    # Optional packages the model needs (import names) and the command that installs them; a
    # model whose packages are missing is listed as unavailable and refused before any training.
    requires: tuple[str, ...] = ()
    install: str = ""


_REGISTRY: dict[str, ModelSpec] = {}
_discovered = False


def register_model(name: str, *, family: str, paper: str, preset_args: dict | None = None,
                   width_arg: str | None = None, requires: tuple[str, ...] = (),
                   install: str = ""):
    """Decorator: register ``build(**config) -> nn.Module`` under ``name``.

    ``preset_args`` maps a preset name to constructor arguments that scale the model down for it;
    ``width_arg`` names the integer argument that sets its width (for ``--match``);
    ``requires`` names optional packages it imports (``install``: the command that adds them).
    """

    def decorate(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.module != build.__module__:
            raise ValueError(
                f"model name {name!r} is registered twice: by {existing.module} and {build.__module__}"
            )
        _REGISTRY[name] = ModelSpec(name, family, paper, build, build.__module__,
                                    dict(preset_args or {}), width_arg, tuple(requires), install)
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
            where = Path(info.module_finder.path) / f"{info.name}.py"
            _import_or_warn(where, partial(importlib.import_module, f"{__package__}.{info.name}"))
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        _import_or_warn(f"entry point {entry_point.value!r}", entry_point.load)


def _import_or_warn(where, load: Callable) -> None:
    """A model file that fails to import is skipped with a warning, so the others stay usable."""
    try:
        load()
    except Exception as error:  # SyntaxError, ImportError, an error in the module's own code...
        frames = [f.lineno for f in traceback.extract_tb(error.__traceback__)
                  if f.filename == str(where)]  # the failing line is shown, not ours
        line = (error.lineno if isinstance(error, SyntaxError) else frames[-1] if frames
                else None) or 1
        warnings.warn_explicit(f"skipping {where}: it failed to import ({type(error).__name__}: "
                               f"{error}); its models are not registered", RuntimeWarning,
                               str(where), line)


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
    unknown: list[str] = []
    for pattern in patterns:
        matches = [n for n in names if fnmatch.fnmatchcase(n, "*" if pattern == "all" else pattern)]
        if not matches:
            unknown.append(pattern)
        chosen += [m for m in matches if m not in chosen]
    if unknown:  # every unknown name at once, each with its closest registered names
        raise UnknownModelError(_unknown_message(*unknown))
    return chosen


def get_spec(name: str) -> ModelSpec:
    _discover()
    if name not in _REGISTRY:
        raise UnknownModelError(_unknown_message(name))
    return _REGISTRY[name]


def unavailable(name: str) -> str | None:
    """Why ``name`` cannot run here (its optional packages are missing, and how to install
    them), or None when it can."""
    spec = get_spec(name)
    missing = [m for m in spec.requires if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return f"needs {', '.join(missing)}: {spec.install or 'pip install ' + ' '.join(missing)}"


def create_model(name: str, **config) -> nn.Module:
    """Build the registered model ``name`` with keyword overrides of its default configuration."""
    return get_spec(name).build(**config)


def parameter_count(name: str, **config) -> int:
    """Parameters of ``create_model(name, **config)``, counted on the meta device (no memory
    allocated, no weights initialised); a model that cannot be built there is built for real."""
    try:
        return meta_parameter_count(name, **config)
    except Exception:  # e.g. a constructor that reads a tensor's values
        return sum(p.numel() for p in create_model(name, **config).parameters())


def meta_parameter_count(name: str, **config) -> int:
    with torch.device("meta"):
        model = create_model(name, **config)
    return sum(p.numel() for p in model.parameters())


def _unknown_message(*names: str) -> str:
    known = sorted(_REGISTRY)
    parts = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        parts.append(f"unknown model {name!r}"
                     + (f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ";"))
    return " ".join(parts) + f" known: {', '.join(known)}"


class UnknownModelError(KeyError):
    """An unknown model name; the message lists the closest registered names."""

    def __str__(self) -> str:
        return str(self.args[0])
