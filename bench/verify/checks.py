"""The rows of ``run_bench.py verify``: each check (a fixture and its model) under each set of
fast paths (bench.verify.paths), with the measured difference, its bound and pass / FAIL."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from .cases import case_for_file
from .golden import FIXTURES, compare, run_case
from .paths import path_sets, train_paths
from .train_step import (
    FILES,
    KIND,
    build_model,
    compare_step,
    is_train_step,
    load_train_step,
    patch_order_matches,
    run_train_step,
    train_config,
)


@dataclass(frozen=True)
class Row:
    check: str  # the fixture file and its model
    paths: str  # the fast paths, or "eager"
    diff: str  # what was measured
    bound: str
    ratio: float  # worst measured / bound; > 1 (or NaN) fails
    error: str = ""  # an exception's message instead of a measurement

    @property
    def passed(self) -> bool:
        return not self.error and self.ratio <= 1


def default_files(device: torch.device) -> list[Path]:
    """Every golden fixture shipped in tests/fixtures, then the training step's (float64 on the
    CPU, float32 on CUDA)."""
    step = FILES[torch.float64 if device.type == "cpu" else torch.float32]
    return sorted(FIXTURES.glob("*_golden.npz")) + [FIXTURES / step]


def model_of(path: Path) -> str:
    """The model a file checks; a file of no known layout is a ValueError saying which are."""
    if is_train_step(path):
        return "modernn"
    try:
        return case_for_file(path)[0]
    except ValueError as error:
        raise ValueError(f"{error}; or a training-step file (kind {KIND}...)") from None


def select(files: list[Path], models: list[str] | None) -> list[Path]:
    """The files whose model is in ``models`` (all when None); an unknown name is an error."""
    known = {path: model_of(path) for path in files}
    if models is None:
        return files
    unknown = sorted(set(models) - set(known.values()))
    if unknown:
        raise ValueError(f"no check for model(s) {', '.join(unknown)}; the checks are for: "
                         f"{', '.join(dict.fromkeys(known.values()))}")
    return [path for path in files if known[path] in models]


def golden_rows(path: Path, device: torch.device, compile_: bool) -> list[Row]:
    name, case = case_for_file(path)
    rows = []
    for paths in path_sets(case.build(), train_paths(device, compile_, training=False)):
        with failure(rows, f"{path.name} ({name})", paths.label):
            report = compare(*run_case(case, device=device, prepare=paths.prepare), case.tol)
            ratio = report["worst_ratio"] if report["finite"] else float("inf")
            rows.append(Row(f"{path.name} ({name})", paths.label, f"max abs diff {report['max_diff']:.2e}",
                            case.tol.describe(), ratio))
    return rows


def train_step_rows(path: Path, device: torch.device, compile_: bool) -> list[Row]:
    fx = load_train_step(path)
    check = f"{path.name} (modernn, training step, {str(fx.dtype).removeprefix('torch.')})"
    if not patch_order_matches(fx):
        return [Row(check, "eager", "", "", float("inf"), "our patches, permuted to the authors' "
                                                           "channel order, differ from 'patched'")]
    rows = []
    for paths in path_sets(build_model(fx.config), train_paths(device, compile_, training=True)):
        with failure(rows, check, paths.label):
            cfg = paths.train_config(train_config(fx.config))
            ours = run_train_step(fx, device, paths.model, cfg)
            comparison = compare_step(fx, *ours)
            rows.append(Row(check, paths.label, comparison.describe(0), comparison.describe(1),
                            comparison.ratio))
    return rows


@contextlib.contextmanager
def failure(rows: list[Row], check: str, paths: str):
    """A row that raised is a FAIL row with the error, and the other rows still run."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 -- any failure of a fast path is a finding
        rows.append(Row(check, paths, "", "", float("inf"), f"{type(error).__name__}: {error}"))


@contextlib.contextmanager
def exact_float32(device: torch.device):
    """TF32 off while verifying on CUDA: the bounds are float32's."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def verify(files: Iterable[Path], device: torch.device, compile_: bool = False, on_row=None):
    """Every row of ``files`` (golden or training-step layout); ``on_row(row)`` as each ends."""
    rows = []
    with exact_float32(device):
        for path in files:
            kind = train_step_rows if is_train_step(path) else golden_rows
            for row in kind(path, device, compile_):
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows
