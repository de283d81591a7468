"""Every table and plot of a results folder, rebuilt from its store alone (no retraining)."""
from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np

from ..runtime import files as atomic
from ..store import RECORDS_FILE, ResultsStore
from . import plots, statistics
from .aggregate import COST as _COST
from .aggregate import (
    DISAGREEMENT,
    accuracy_frame,
    busy_rows,
    configuration_note,
    configurations,
    cost_frame,
    history_frame,
    per_frame_frame,
    unit_of,
)
from .compute import compute_sections
from .cross_eval import NOTE as CROSS_EVAL_NOTE
from .cross_eval import TITLE as CROSS_EVAL
from .cross_eval import cross_eval_section, latest_evaluations
from .tables import accuracy_table, cost_table, csv_table, to_latex

COST_LABELS = {key: label for key, (label, _, _) in _COST.items()}
DEFAULT_REFERENCE = "modernn"  # the model compared with, when in the grid and none is named

CONVENTIONS = (
    "MSE and MAE are summed over the pixels of a frame (the field's convention), then averaged over "
    "predicted frames and test clips; MSE/pixel is the per-pixel mean. Predictions are clipped to "
    "[0, 1] before every metric. SSIM: scikit-image's definition (7x7 uniform window) on uint8 "
    "frames. PSNR: per frame from the per-pixel MSE, peak 1. Values are mean ± standard deviation "
    "over seeds; bold marks the best value of a column."
)


def units_note(records: list[dict]) -> str:
    """How the columns in data units were computed (empty when the dataset declares none)."""
    units = unit_of(records)
    if units is None:
        return ""
    unit, scale = units["unit"], units["scale"]
    scale_text = (f"{scale[0]:.6g} {unit}" if len(set(scale)) == 1
                  else f"{', '.join(f'{v:.6g}' for v in scale)} {unit} per channel (differing "
                       "scales: no conversion)")
    return (f" In {unit}: the per-pixel metrics on [0, 1] converted with the dataset's scale "
            f"s = {scale_text} (x = x01 × s + offset): MSE/pixel × s², √(MSE/pixel) × s and "
            f"MAE/pixel × s; RMSE is the root of the mean squared error over every predicted "
            f"pixel of the test set (OpenSTL's RMSE), predictions clipped as above. Scale: "
            f"{units['source']}.")


def lpips_note(records: list[dict]) -> str:
    """How LPIPS was computed, or why a run that asked for it (--lpips) has none."""
    done = [r["metrics"]["lpips_info"] for r in records
            if r.get("metrics") and r["metrics"].get("lpips_info")]
    if done:
        return f" {done[-1]['definition']}; lower is better."
    missing = [r["metrics"]["lpips_unavailable"] for r in records
               if r.get("metrics") and r["metrics"].get("lpips_unavailable")]
    return f" LPIPS was asked for (--lpips) but not computed: {missing[-1]}." if missing else ""


def comparison_note(reference: str | None, seeds_tested: bool) -> str:
    """How the comparison column was computed (empty without a reference)."""
    if reference is None:
        return ""
    note = (f" Δ MSE vs {reference}: each model's test MSE minus {reference}'s, on the same test "
            f"clips; the interval is a {statistics.CONFIDENCE:.0%} percentile bootstrap over test "
            f"clips ({statistics.RESAMPLES:,} paired resamples, seed {statistics.SEED}). With "
            "several seeds each clip's difference is taken within a seed and averaged over seeds, "
            "so the interval covers the choice of test clips, not the spread of training runs. "
            "Models without trainable parameters (persistence, blank, mean) do not depend on the "
            "seed and are paired with every seed.")
    if seeds_tested:
        note += (f" p vs {reference} (seeds): two-sided paired t-test of test MSE over the seeds "
                 f"both ran, for trained models with {statistics.MIN_SEEDS_FOR_TEST} or more "
                 "seeds.")
    else:
        note += (f" No test over seeds: it needs {statistics.MIN_SEEDS_FOR_TEST} or more seeds of "
                 "a trained model and of the reference.")
    return note


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
            _write_training_report(folder, staging, training,
                                   resolve_reference(training, reference), evaluations)
        elif profiles:
            _write_cost_report(staging, profiles, evaluations)
        else:
            _write_cross_eval_report(staging, evaluations)
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


def _write_training_report(folder: Path, out: Path, records: list[dict], reference: str | None,
                           evaluations: list[dict]) -> None:
    """The full report of training records, written into ``out``; ``folder``: where the store
    and its example predictions are."""
    acc, cost = accuracy_frame(records, reference), cost_frame(records)
    per_frame = per_frame_frame(records)
    setup = _setup(records)
    caption, data_line = _caption(records)
    data_line = " ".join(filter(None, [data_line, configuration_note(configurations(records))]))
    conventions = (CONVENTIONS + units_note(records) + lpips_note(records)
                   + comparison_note(reference, bool(acc["p_seeds"].notna().any()))
                   + pairing_note(acc) + failures_note(acc) + non_finite_note(acc, per_frame))
    cost_note = _cost_note(setup) + throughput_note(cost)

    accuracy_md = accuracy_table(acc, reference=reference).to_markdown(index=False)
    cost_md = cost_table(cost).to_markdown(index=False)
    cross_md, cross_lines = cross_eval_section(out, evaluations)
    (out / "summary.md").write_text(
        f"# Accuracy: {caption}\n\n{data_line}\n\n{accuracy_md}\n\n{conventions}\n\n"
        f"# Cost\n\n{cost_md}\n\n{cost_note}\n" + _cross_eval_md(cross_md)
    )
    csv_table(acc, cost).to_csv(out / "summary.csv", index=False)
    (out / "summary.tex").write_text(
        to_latex(accuracy_table(acc, latex=True, reference=reference), f"Accuracy on {caption}. "
                 + conventions, "tab:accuracy") + "\n"
        + to_latex(cost_table(cost, latex=True), f"Cost on {caption}. " + cost_note, "tab:cost")
    )

    figures, palette = [], plots.model_palette(acc["model"])
    per_frame.to_csv(out / "per_frame.csv", index=False)
    per_frame = _finite(per_frame, ["mse"])
    if not per_frame.empty:
        figures.append(("Per-frame accuracy",
                        plots.per_frame(per_frame, out / "per_frame", caption, palette, acc,
                                        reference)[0]))
        figures.append(("Accuracy against cost",
                        plots.pareto(_finite(acc, ["mse"]), cost, out / "pareto", caption,
                                     palette)[0]))
    history = history_frame(records)
    history = _finite(history, [c for c in ("train_loss", "val_mse") if c in history])
    if not history.empty:
        figures.append(("Training curves",
                        plots.loss_curves(history, out / "loss_curves", caption, palette)[0]))
    figures += _cost_figures(out, cost, caption, palette)
    examples = _examples(folder, out)
    sections = [("Accuracy", [data_line, "", accuracy_md, "", conventions]),
                ("Cost", [cost_md, "", cost_note])]
    extra_sections, extra_figures = compute_sections(out, records, caption, palette)
    sections += extra_sections + ([(CROSS_EVAL, cross_lines)] if cross_lines else [])
    figures = extra_figures + figures
    tables = ("[summary.md](summary.md), [summary.csv](summary.csv), [summary.tex](summary.tex) "
              "(LaTeX, booktabs), [per_frame.csv](per_frame.csv)")
    _write_index(out, caption, sections, tables, figures, examples)


def _examples(folder: Path, out: Path) -> list[tuple]:
    """(title, grid, gif) of every stored example prediction (``folder``/examples/*.npz), the
    images written under ``out``/examples."""
    examples = []
    for npz in sorted((folder / "examples").glob("*.npz")):
        arrays = read_examples(npz)
        if arrays is None:
            continue
        title = npz.stem.replace("__", ", ")
        target = out / "examples" / npz.name
        target.parent.mkdir(parents=True, exist_ok=True)
        examples.append((title, plots.example_grid(arrays, title, target.with_suffix(".png")),
                         plots.example_gif(arrays, target.with_suffix(".gif"))))
    return examples


def _finite(frame, columns: list[str]):
    """The rows of ``frame`` whose ``columns`` are all finite numbers (what a plot can place)."""
    if frame.empty or not columns:
        return frame
    values = frame[columns].apply(lambda c: c.astype("float64", errors="ignore"))
    return frame[np.isfinite(values.to_numpy(dtype="float64")).all(axis=1)]


def non_finite_note(acc, per_frame) -> str:
    """Which rows have a non-finite test metric (shown as such in the table, left out of the
    plots); empty when none."""
    ok = acc[acc["status"] == "ok"]
    bad = [row["model"] for _, row in ok.iterrows()
           if not all(np.isfinite(row[k]) for k in ("mse", "mae", "ssim", "psnr") if k in row)]
    if not per_frame.empty:
        bad += [m for m in per_frame.loc[~np.isfinite(per_frame["mse"]), "model"].unique()
                if m not in bad]
    return (f" A test metric of {', '.join(bad)} is not a finite number (NaN or infinite: a "
            "seed diverged or a record was written by hand); the table shows it as it is, and the "
            "plots leave those points out.") if bad else ""


def pairing_note(acc) -> str:
    """Which rows were compared with which when the folder holds several protocols."""
    compared = acc[acc["compared_with"] != ""] if "compared_with" in acc else acc.iloc[:0]
    if acc["protocol"].nunique() < 2 or compared.empty:
        return ""
    pairs = "; ".join(f"{row['model']} with {row['compared_with']}"
                      for _, row in compared.iterrows())
    alone = [row["model"] for _, row in acc.iterrows()
             if row["compared_with"] == "" and not row["is_reference"]]
    return (f" Pairs (same protocol: budget, size match, training settings, device, "
            f"precision): {pairs}." + (f" Not compared (no reference row of their protocol): "
                                       f"{', '.join(alone)}." if alone else ""))


def failures_note(acc) -> str:
    """Failures that came after a cell's success: the table keeps the success (the run skips
    such a cell as done), and says so."""
    later = acc[acc["later_failures"] != ""] if "later_failures" in acc else acc.iloc[:0]
    if later.empty:
        return ""
    return (" Failed after a success (the table uses the newest successful record of each "
            "seed, as a run does when it skips the cell as done): "
            + "; ".join(f"{row['model']} {row['later_failures']}" for _, row in later.iterrows())
            + ".")


def throughput_note(cost) -> str:
    """Where the training throughput came from, and a warning where the profile's rate and the
    training run's disagree by more than ``DISAGREEMENT`` times."""
    if "train_from" not in cost:
        return ""
    note = (" Training throughput: from the training run's own iteration times (the median over "
            "its timed stretches, validation and checkpoints left out; median over seeds) at "
            "the configured batch.")
    profiled = cost.loc[cost["train_from"] == "profile", "model"].tolist()
    if profiled:
        note += (f" For {', '.join(profiled)} no training iteration was timed: their figure is "
                 "the profile's (a few timed iterations before the grid).")
    for _, row in busy_rows(cost).iterrows():
        note += (f" WARNING: {row['model']}: the profile measured "
                 f"{row['profile_train_seq_s']:.3g} seq/s, its training run "
                 f"{row['train_seq_s']:.3g} seq/s ({max(row['rate_ratio'], 1 / row['rate_ratio']):.1f}x "
                 f"apart, over {DISAGREEMENT:g}x): the machine was probably busy during the "
                 f"{'profile' if row['rate_ratio'] > 1 else 'training'}, so the profile's other "
                 "figures (inference speed, memory) may be off too.")
    return note


def _write_cost_report(folder: Path, records: list[dict], evaluations: list[dict]) -> None:
    """Profile-only records: parameters, FLOPs, throughput and memory; no accuracy. Written into
    ``folder`` (the staging folder)."""
    cost = cost_frame(records)
    setup = _setup(records)
    caption, data_line = _caption(records)
    caption = f"{caption}, cost only (--profile-only)"
    cost_md = _profiled(cost_table(cost)).to_markdown(index=False)
    cross_md, cross_lines = cross_eval_section(folder, evaluations)
    (folder / "summary.md").write_text(
        f"# Cost: {caption}\n\n{data_line}\n\n{cost_md}\n\n{_cost_note(setup)}\n"
        + _cross_eval_md(cross_md))
    cost.to_csv(folder / "summary.csv", index=False)
    (folder / "summary.tex").write_text(
        to_latex(_profiled(cost_table(cost, latex=True)), f"Cost on {caption}. "
                 + _cost_note(setup), "tab:cost"))
    tables = "[summary.md](summary.md), [summary.csv](summary.csv), [summary.tex](summary.tex)"
    sections = [("Cost", [data_line, "", cost_md, "", _cost_note(setup)])]
    sections += [(CROSS_EVAL, cross_lines)] if cross_lines else []
    _write_index(folder, caption, sections, tables, _cost_figures(folder, cost, caption), [])


def _profiled(table):
    """A profile-only cost table: its training throughput is the profile's, and says so."""
    label = COST_LABELS["train_seq_s"]
    return table.rename(columns={label: label.replace(")", ", profile)")})


def _write_cross_eval_report(folder: Path, evaluations: list[dict]) -> None:
    """A store of evaluate records alone: their table (the test data trained nothing here)."""
    caption, data_line = _caption(evaluations)
    cross_md, cross_lines = cross_eval_section(folder, evaluations)
    (folder / "summary.md").write_text(f"# {CROSS_EVAL}: {caption}\n\n{data_line}\n\n{cross_md}"
                                       f"\n\n{CROSS_EVAL_NOTE}\n")
    _write_index(folder, caption, [(CROSS_EVAL, [data_line, "", *cross_lines])],
                 "[summary.md](summary.md), [cross_eval.csv](cross_eval.csv)", [], [])


def _cross_eval_md(table: str) -> str:
    return f"\n# {CROSS_EVAL}\n\n{table}\n\n{CROSS_EVAL_NOTE}\n" if table else ""


def _cost_figures(folder: Path, cost, caption: str = "", palette: dict | None = None) -> list:
    if "train_seq_s" not in cost:
        return []
    return [("Throughput and memory",
             plots.cost_bars(cost, folder / "cost_bars", caption, palette)[0])]


def _caption(records: list[dict]) -> tuple[str, str]:
    """A title from the dataset and preset names (never a path), and a line naming the data
    source with any absolute path shortened to its file name."""
    info = records[0]["dataset_info"]
    source = re.sub(r"(?<![\w.])/[^\s,;()]+", lambda m: Path(m.group()).name, info["source"])
    line = f"Data: {source}."
    test = (info.get("windows") or {}).get("test") or {}
    if test.get("used") is not None and test["used"] < test.get("available", 0):
        line += (f" Test: {test['used']:,} of the split's {test['available']:,} windows, evenly "
                 "spaced (a published table uses them all).")
    return f"{info['name']}, preset {records[0]['preset']}", line


def _setup(records: list[dict]) -> dict:
    costs = [r["cost"] for r in records if r.get("cost")]
    return {
        "devices": sorted({r["device_name"] for r in records}),
        "amp": sorted({str(c.get("amp")) for c in costs}),
        "batch": sorted({str(c.get("bench_batch")) for c in costs}),
        "threads": sorted({str(c.get("threads")) for c in costs}),
    }


def _cost_note(setup: dict) -> str:
    return (
        "GMACs: one whole test rollout at batch 1, one multiply-add counted as one: fvcore's count "
        "(also counts normalisation layers) and PyTorch's flop counter (matrix products and "
        "convolutions only). Throughput: sequences per second, median of timed repeats after a "
        "warm-up, with device synchronisation; training = one iteration of the configured protocol. "
        "Memory: peak above the start (CUDA: max allocated; CPU: resident set growth). "
        "Efficiency: achieved FLOP/s (PyTorch's count) over the device's peak as measured by "
        "the harness (the faster of a large matmul and a large 3x3 convolution); it can exceed "
        "100% where a library computes convolutions with fewer multiplications than counted "
        "(Winograd, FFT). "
        f"Measured on {', '.join(setup['devices'])}; mixed precision {', '.join(setup['amp'])}; "
        f"batch {', '.join(setup['batch'])}; threads {', '.join(setup['threads'])}."
    )


def read_examples(npz: Path) -> dict | None:
    """A cell's example clips, or None with a warning naming the file when it is damaged (the
    next run of that cell writes it again): one bad file never stops the report."""
    try:
        with np.load(npz, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as error:  # BadZipFile, EOFError, ValueError, zlib.error...
        warnings.warn(f"{npz}: skipping damaged example clips ({type(error).__name__}: {error})",
                      stacklevel=2)
        return None


def _write_index(folder, caption, sections, tables, figures, examples) -> None:
    lines = [f"# {caption}", ""]
    for title, body in sections:
        lines += [f"## {title}", "", *body, ""]
    lines += [f"Tables: {tables}; the store: [records.jsonl](records.jsonl).", ""]
    for title, path in figures:
        lines += [f"## {title}", "", f"![{title}]({path.name}) ([PDF]({path.with_suffix('.pdf').name}))", ""]
    if examples:
        lines += ["## Example predictions", ""]
        for title, grid, gif in examples:
            rel = f"examples/{grid.name}"
            lines += [f"### {title}", "", f"![{title}]({rel})", "",
                      f"![{title}, animated: target | prediction](examples/{gif.name})", ""]
    (folder / "README.md").write_text("\n".join(lines))
