"""Every golden case: how each model's reference names map onto ours, the model at the fixture's
configuration and the bound. ``CASES`` holds the fixtures shipped in tests/fixtures (by model
name); ``case_for_file`` finds the case of any file in the golden layout."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..golden import FIXTURES, GoldenCase
from . import modernn, openstl_rnn, simvp, transformers

CASES: dict[str, GoldenCase] = {
    **modernn.CASES, **openstl_rnn.CASES, **simvp.CASES,
    "predformer": transformers.predformer_case(), "swinlstm": transformers.swinlstm_case(),
}
SUFFIX = "_golden.npz"


def case_name(path: str | Path) -> str:
    """The model a golden file is for: by its ``kind`` (files that state their configuration),
    else by its name, ``<model>_golden.npz``."""
    data = np.load(FIXTURES / path)
    kind = str(data["kind"]) if "kind" in data.files else ""
    for prefix, (name, _) in transformers.FROM_CONFIG.items():
        if kind.startswith(prefix):
            return name
    name = Path(path).name
    if name.endswith(SUFFIX) and name[: -len(SUFFIX)] in CASES:
        return name[: -len(SUFFIX)]
    raise ValueError(f"{path}: not a known golden fixture; accepted: a file whose kind starts with "
                     f"{' or '.join(transformers.FROM_CONFIG)}, or one named <model>{SUFFIX} for "
                     f"a model in {', '.join(CASES)}")


def case_for_file(path: str | Path) -> tuple[str, GoldenCase]:
    """(model, case) for a file in the golden layout (tests/fixtures/README.md)."""
    name = case_name(path)
    for _, (model, build) in transformers.FROM_CONFIG.items():
        if model == name:
            return name, build(path)
    return name, dataclasses.replace(CASES[name], fixture=path)
