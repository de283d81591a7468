"""``write_report``: which report a store gets, built in a staging folder and published in one
go, and the model the others are compared with."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..runtime import files as atomic
from ..store import RECORDS_FILE, ResultsStore
from .evaluation_table import latest_evaluations
from .sections import write_cost_report, write_cross_eval_report, write_training_report

DEFAULT_REFERENCE = "modernn"  # the model compared with, when in the grid and none is named


def resolve_reference(records: list[dict], requested: str | None = None) -> str | None:
    """The model every other is compared with: ``requested`` (which must be in the records),
    else the one the newest run named (``record["reference"]``, None for none), else
    ``DEFAULT_REFERENCE`` when present; None: no comparison."""
    present = list(dict.fromkeys(r["model"] for r in records))
    if requested is not None:
        if requested not in present:
            raise ValueError(f"reference model {requested!r} has no records here; the models "
                             f"present are: {', '.join(present)}")
        return requested
    named = [r["reference"] for r in records if "reference" in r]
    if named:
        return named[-1] if named[-1] in present else None
    return DEFAULT_REFERENCE if DEFAULT_REFERENCE in present else None


def write_report(folder: str | Path, reference: str | None = None) -> Path:
    """Writes the tables, plots, example grids/GIFs and README.md index of ``folder``; a store of
    profile-only records (``--profile-only``) gets the cost tables and plots alone. Records of
    ``run_bench.py evaluate`` get their own table ("Cross-dataset evaluation", cross_eval.csv),
    never mixed into the others. ``reference``: the model compared with (see
    :func:`resolve_reference`).

    The report is built completely or not at all: every file is written into a temporary folder
    inside ``folder`` and moved into place only once all are written (README.md last), so a
    failure half-way leaves the previous report as it was."""
    folder = Path(folder)
    store = ResultsStore(folder)
    everything = store.records()
    latest = store.latest(everything)
    evaluations = latest_evaluations(everything)
    training = [r for r in latest if r["mode"] == "train"]
    profiles = [r for r in latest if r["mode"] == "profile"]
    if not (training or profiles or evaluations):
        raise ValueError(f"no training or profile records in {folder / RECORDS_FILE} (nor any of "
                         "run_bench.py evaluate); run the benchmark first")
    atomic.remove_stale_temporaries(folder / "report")  # left by a report killed mid-way
    staging = atomic.temporary_folder(folder / "report")
    try:
        if training:
            write_training_report(folder, staging, training,
                                  resolve_reference(training, reference), evaluations)
        elif profiles:
            write_cost_report(staging, profiles, evaluations)
        else:
            write_cross_eval_report(staging, evaluations)
        _publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / "summary.md"


def _publish(staging: Path, folder: Path) -> None:
    """Moves every file of ``staging`` to the same place under ``folder`` (each move atomic,
    within one file system), README.md, the index that points at the rest, last."""
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.relative_to(staging) == Path("README.md"))
    for path in files:
        target = folder / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
