"""The three kinds of report, each written into a staging folder: of training records
(accuracy, cost, figures, compute and cross-dataset sections), of profile-only records (cost
alone), and of ``run_bench.py evaluate`` records alone (cross-dataset evaluation)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from . import plots
from .aggregate import (
    COST,
    accuracy_frame,
    configuration_note,
    configurations,
    cost_frame,
    history_frame,
    per_frame_frame,
    row_labels,
)
from .compute import compute_sections
from .domain import TITLE as DOMAIN_TITLE
from .domain import write_domain_scores
from .evaluation_table import NOTE as CROSS_EVAL_NOTE
from .evaluation_table import TITLE as CROSS_EVAL
from .evaluation_table import cross_eval_section
from .index import write_examples, write_index
from .notes import (
    CONVENTIONS,
    comparison_note,
    cost_setup,
    failures_note,
    lpips_note,
    measurement_note,
    non_finite_note,
    openstl_note,
    pairing_note,
    selection_note,
    throughput_note,
    units_note,
)
from .published import write_published
from .tables import accuracy_table, cost_table, csv_table, to_latex


def write_training_report(folder: Path, out: Path, records: list[dict], reference: str | None,
                          evaluations: list[dict]) -> None:
    """The full report of training records, written into ``out``; ``folder``: where the store
    and its example predictions are."""
    acc, cost = accuracy_frame(records, reference), cost_frame(records)
    per_frame = per_frame_frame(records)
    setup = cost_setup(records)
    caption, data_line = _caption(records)
    data_line = " ".join(filter(None, [data_line, configuration_note(configurations(records))]))
    conventions = (CONVENTIONS + openstl_note(records) + selection_note(records)
                   + units_note(records) + lpips_note(records)
                   + comparison_note(reference, bool(acc["p_seeds"].notna().any()))
                   + pairing_note(acc) + failures_note(acc) + non_finite_note(acc, per_frame))
    cost_note = measurement_note(setup) + throughput_note(cost)

    accuracy_md = accuracy_table(acc, reference=reference).to_markdown(index=False)
    cost_md = cost_table(cost).to_markdown(index=False)
    cross_md, cross_lines = cross_eval_section(out, evaluations)
    published_lines, published_figure = write_published(out, acc, records, caption)
    palette = plots.model_palette(acc["model"])
    domain_lines, domain_figures = write_domain_scores(out, records, row_labels(records), caption,
                                                       palette)
    (out / "summary.md").write_text(
        f"# Accuracy: {caption}\n\n{data_line}\n\n{accuracy_md}\n\n{conventions}\n\n"
        + ("# " + DOMAIN_TITLE + "\n\n" + "\n".join(domain_lines) + "\n" if domain_lines
           else "")
        + f"# Cost\n\n{cost_md}\n\n{cost_note}\n" + _cross_eval_md(cross_md)
        + ("\n# Published results\n\n" + "\n".join(published_lines) + "\n" if published_lines
           else "")
    )
    csv_table(acc, cost).to_csv(out / "summary.csv", index=False)
    (out / "summary.tex").write_text(
        to_latex(accuracy_table(acc, latex=True, reference=reference), f"Accuracy on {caption}. "
                 + conventions, "tab:accuracy") + "\n"
        + to_latex(cost_table(cost, latex=True), f"Cost on {caption}. " + cost_note, "tab:cost")
    )

    figures = []
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
    examples = write_examples(folder, out)
    sections = [("Accuracy", [data_line, "", accuracy_md, "", conventions]),
                *([(DOMAIN_TITLE, domain_lines)] if domain_lines else []),
                ("Cost", [cost_md, "", cost_note])]
    figures = domain_figures + figures
    extra_sections, extra_figures = compute_sections(out, records, caption, palette)
    sections += extra_sections + ([(CROSS_EVAL, cross_lines)] if cross_lines else [])
    figures = extra_figures + figures
    if published_lines:
        sections.append(("Published results", published_lines))
        figures.append(("Ours against published", published_figure))
    tables = ("[summary.md](summary.md), [summary.csv](summary.csv), [summary.tex](summary.tex) "
              "(LaTeX, booktabs), [per_frame.csv](per_frame.csv)")
    write_index(out, caption, sections, tables, figures, examples)


def write_cost_report(folder: Path, records: list[dict], evaluations: list[dict]) -> None:
    """Profile-only records: parameters, FLOPs, throughput and memory; no accuracy. Written into
    ``folder`` (the staging folder)."""
    cost = cost_frame(records)
    setup = cost_setup(records)
    caption, data_line = _caption(records)
    caption = f"{caption}, cost only (--profile-only)"
    cost_md = profiled_table(cost_table(cost)).to_markdown(index=False)
    cross_md, cross_lines = cross_eval_section(folder, evaluations)
    (folder / "summary.md").write_text(
        f"# Cost: {caption}\n\n{data_line}\n\n{cost_md}\n\n{measurement_note(setup)}\n"
        + _cross_eval_md(cross_md))
    cost.to_csv(folder / "summary.csv", index=False)
    (folder / "summary.tex").write_text(
        to_latex(profiled_table(cost_table(cost, latex=True)), f"Cost on {caption}. "
                 + measurement_note(setup), "tab:cost"))
    tables = "[summary.md](summary.md), [summary.csv](summary.csv), [summary.tex](summary.tex)"
    sections = [("Cost", [data_line, "", cost_md, "", measurement_note(setup)])]
    sections += [(CROSS_EVAL, cross_lines)] if cross_lines else []
    write_index(folder, caption, sections, tables, _cost_figures(folder, cost, caption), [])


def profiled_table(table):
    """A profile-only cost table: its training throughput is the profile's, and says so."""
    label = COST["train_seq_s"][0]
    return table.rename(columns={label: label.replace(")", ", profile)")})


def write_cross_eval_report(folder: Path, evaluations: list[dict]) -> None:
    """A store of evaluate records alone: their table (the test data trained nothing here)."""
    caption, data_line = _caption(evaluations)
    cross_md, cross_lines = cross_eval_section(folder, evaluations)
    (folder / "summary.md").write_text(f"# {CROSS_EVAL}: {caption}\n\n{data_line}\n\n{cross_md}"
                                       f"\n\n{CROSS_EVAL_NOTE}\n")
    write_index(folder, caption, [(CROSS_EVAL, [data_line, "", *cross_lines])],
                "[summary.md](summary.md), [cross_eval.csv](cross_eval.csv)", [], [])


def _cross_eval_md(table: str) -> str:
    return f"\n# {CROSS_EVAL}\n\n{table}\n\n{CROSS_EVAL_NOTE}\n" if table else ""


def _cost_figures(folder: Path, cost, caption: str = "", palette: dict | None = None) -> list:
    if "train_seq_s" not in cost:
        return []
    return [("Throughput and memory",
             plots.cost_bars(cost, folder / "cost_bars", caption, palette)[0])]


def _finite(frame, columns: list[str]):
    """The rows of ``frame`` whose ``columns`` are all finite numbers (what a plot can place)."""
    if frame.empty or not columns:
        return frame
    values = frame[columns].apply(lambda c: c.astype("float64", errors="ignore"))
    return frame[np.isfinite(values.to_numpy(dtype="float64")).all(axis=1)]


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
