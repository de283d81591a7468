"""Every table and plot of a results folder, rebuilt from its store alone (no retraining)."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..store import RECORDS_FILE, ResultsStore
from . import plots, statistics
from .aggregate import accuracy_frame, cost_frame, history_frame, per_frame_frame, unit_of
from .compute import compute_sections
from .cross_eval import NOTE as CROSS_EVAL_NOTE
from .cross_eval import TITLE as CROSS_EVAL
from .cross_eval import cross_eval_section, latest_evaluations
from .tables import accuracy_table, cost_table, csv_table, to_latex

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
    :func:`resolve_reference`)."""
    folder = Path(folder)
    store = ResultsStore(folder)
    everything = store.records()
    latest = store.latest(everything)
    evaluations = latest_evaluations(everything)
    records = [r for r in latest if r["mode"] == "train"]
    if records:
        return _write_training_report(folder, records, resolve_reference(records, reference),
                                      evaluations)
    records = [r for r in latest if r["mode"] == "profile"]
    if records:
        return _write_cost_report(folder, records, evaluations)
    if evaluations:
        return _write_cross_eval_report(folder, evaluations)
    raise ValueError(f"no training or profile records in {folder / RECORDS_FILE} (nor any of "
                     "run_bench.py evaluate); run the benchmark first")


def _write_training_report(folder: Path, records: list[dict], reference: str | None,
                           evaluations: list[dict]) -> Path:
    acc, cost = accuracy_frame(records, reference), cost_frame(records)
    setup = _setup(records)
    caption, data_line = _caption(records)
    conventions = (CONVENTIONS + units_note(records) + lpips_note(records)
                   + comparison_note(reference, bool(acc["p_seeds"].notna().any())))

    accuracy_md = accuracy_table(acc, reference=reference).to_markdown(index=False)
    cost_md = cost_table(cost).to_markdown(index=False)
    cross_md, cross_lines = cross_eval_section(folder, evaluations)
    (folder / "summary.md").write_text(
        f"# Accuracy: {caption}\n\n{data_line}\n\n{accuracy_md}\n\n{conventions}\n\n"
        f"# Cost\n\n{cost_md}\n\n{_cost_note(setup)}\n" + _cross_eval_md(cross_md)
    )
    csv_table(acc, cost).to_csv(folder / "summary.csv", index=False)
    (folder / "summary.tex").write_text(
        to_latex(accuracy_table(acc, latex=True, reference=reference), f"Accuracy on {caption}. "
                 + conventions, "tab:accuracy") + "\n"
        + to_latex(cost_table(cost, latex=True), f"Cost on {caption}. " + _cost_note(setup),
                   "tab:cost")
    )

    figures, palette = [], plots.model_palette(r["model"] for r in records)
    per_frame = per_frame_frame(records)
    per_frame.to_csv(folder / "per_frame.csv", index=False)
    if not per_frame.empty:
        figures.append(("Per-frame accuracy",
                        plots.per_frame(per_frame, folder / "per_frame", caption, palette)[0]))
        figures.append(("Accuracy against cost",
                        plots.pareto(acc, cost, folder / "pareto", caption, palette)[0]))
    history = history_frame(records)
    if not history.empty:
        figures.append(("Training curves",
                        plots.loss_curves(history, folder / "loss_curves", caption, palette)[0]))
    figures += _cost_figures(folder, cost, caption, palette)
    examples = []
    for npz in sorted((folder / "examples").glob("*.npz")):
        arrays = read_examples(npz)
        if arrays is None:
            continue
        title = npz.stem.replace("__", ", ")
        examples.append((title, plots.example_grid(arrays, title, npz.with_suffix(".png")),
                         plots.example_gif(arrays, npz.with_suffix(".gif"))))
    sections = [("Accuracy", [data_line, "", accuracy_md, "", conventions]),
                ("Cost", [cost_md, "", _cost_note(setup)])]
    extra_sections, extra_figures = compute_sections(folder, records, caption, palette)
    sections += extra_sections + ([(CROSS_EVAL, cross_lines)] if cross_lines else [])
    figures = extra_figures + figures
    tables = ("[summary.md](summary.md), [summary.csv](summary.csv), [summary.tex](summary.tex) "
              "(LaTeX, booktabs), [per_frame.csv](per_frame.csv)")
    _write_index(folder, caption, sections, tables, figures, examples)
    return folder / "summary.md"


def _write_cost_report(folder: Path, records: list[dict], evaluations: list[dict]) -> Path:
    """Profile-only records: parameters, FLOPs, throughput and memory; no accuracy."""
    cost = cost_frame(records)
    setup = _setup(records)
    caption, data_line = _caption(records)
    caption = f"{caption}, cost only (--profile-only)"
    cost_md = cost_table(cost).to_markdown(index=False)
    cross_md, cross_lines = cross_eval_section(folder, evaluations)
    (folder / "summary.md").write_text(
        f"# Cost: {caption}\n\n{data_line}\n\n{cost_md}\n\n{_cost_note(setup)}\n"
        + _cross_eval_md(cross_md))
    cost.to_csv(folder / "summary.csv", index=False)
    (folder / "summary.tex").write_text(
        to_latex(cost_table(cost, latex=True), f"Cost on {caption}. " + _cost_note(setup),
                 "tab:cost"))
    tables = "[summary.md](summary.md), [summary.csv](summary.csv), [summary.tex](summary.tex)"
    sections = [("Cost", [data_line, "", cost_md, "", _cost_note(setup)])]
    sections += [(CROSS_EVAL, cross_lines)] if cross_lines else []
    _write_index(folder, caption, sections, tables, _cost_figures(folder, cost, caption), [])
    return folder / "summary.md"


def _write_cross_eval_report(folder: Path, evaluations: list[dict]) -> Path:
    """A store of evaluate records alone: their table (the test data trained nothing here)."""
    caption, data_line = _caption(evaluations)
    cross_md, cross_lines = cross_eval_section(folder, evaluations)
    (folder / "summary.md").write_text(f"# {CROSS_EVAL}: {caption}\n\n{data_line}\n\n{cross_md}"
                                       f"\n\n{CROSS_EVAL_NOTE}\n")
    _write_index(folder, caption, [(CROSS_EVAL, [data_line, "", *cross_lines])],
                 "[summary.md](summary.md), [cross_eval.csv](cross_eval.csv)", [], [])
    return folder / "summary.md"


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
