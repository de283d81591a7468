"""Comparisons at equal compute (``--budget``) and equal size (``--match``): the accuracy-vs-
compute plot, the "test MSE at equal compute" table and the size-matched table."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import plots
from .aggregate import row_labels


def budget_label(record: dict) -> str:
    """``kind=amount`` of a budgeted record, e.g. ``flops=3e+13``."""
    budget = record["train"]["budget"]
    return f"{budget['kind']}={budget['amount']:g}"


def budget_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (model, seed, budget checkpoint): cumulative training FLOPs and seconds,
    validation MSE; plus a ``test`` row at the spent budget with the test MSE. ``model``: the
    row's label (bench.report.aggregate.configurations)."""
    rows, labels = [], row_labels(records)
    for r in records:
        train = r.get("train") or {}
        if r["status"] != "ok" or not train.get("budget"):
            continue
        for entry in train["history"]:
            rows.append({"model": labels[id(r)], "budget": budget_label(r), "seed": r["seed"],
                         "split": "validation",
                         "train_flops": entry.get("train_flops"), "train_s": entry["train_s"],
                         "mse": entry["val_mse"]})
        spent = train["budget"]
        rows.append({"model": labels[id(r)], "budget": budget_label(r), "seed": r["seed"],
                     "split": "test",
                     "train_flops": spent.get("spent_flops"), "train_s": spent["spent_train_s"],
                     "mse": r["metrics"]["headline"]["mse"]})
    return pd.DataFrame(rows)


def compute_axis(frame: pd.DataFrame) -> tuple[str, str]:
    """Training FLOPs where every point has them (flops/steps budgets), else seconds."""
    if frame["train_flops"].notna().all() and (frame["train_flops"] > 0).all():
        return "train_flops", "training FLOPs (PyTorch's flop counter)"
    return "train_s", "training seconds on this device"


@plots.theme()
def accuracy_vs_compute(frame: pd.DataFrame, path: Path, title: str = "",
                        palette: dict | None = None) -> list[Path]:
    """Validation (line, band: one standard deviation over seeds) and test MSE (marker with
    error bar) against cumulative training compute, log x, one colour per model (the report's).

    The MSE axis starts at 0 and stops at twice the largest final MSE: an early validation point
    above that (an untrained model's first check) is drawn at the top edge as a triangle with
    its value, instead of squeezing every curve into the bottom of the plot."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    x, label = compute_axis(frame)
    figure, axis = plt.subplots(figsize=(8.5, 4.6))
    palette = palette or plots.model_palette(frame["model"])
    val = frame[frame["split"] == "validation"].copy()
    test = frame[frame["split"] == "test"].groupby(["model", "budget"], sort=False)[[x, "mse"]]
    test = test.agg(["mean", "std"])
    final = val.sort_values(x).groupby(["model", "budget", "seed"])["mse"].last()
    top = 2 * max(final.max(), test[("mse", "mean")].max())
    above = val[val["mse"] > top]
    val["mse"] = val["mse"].clip(upper=top)
    several = frame["budget"].nunique() > 1  # one store, several budgets: dashes tell them apart
    sns.lineplot(val, x=x, y="mse", hue="model", style="budget" if several else None,
                 errorbar="sd", marker="o", ax=axis, palette=palette)
    for _, row in above.iterrows():
        axis.plot(row[x], top, marker="^", markersize=9, color=palette[row["model"]],
                  clip_on=False, zorder=3)
        axis.annotate(f"{row['mse']:.0f}", (row[x], top), textcoords="offset points",
                      xytext=(6, -10), fontsize=8, color=palette[row["model"]])
    for (model, _), row in test.iterrows():
        axis.errorbar(row[(x, "mean")], row[("mse", "mean")], yerr=np.nan_to_num(row[("mse", "std")]),
                      xerr=np.nan_to_num(row[(x, "std")]), marker="*", markersize=12,
                      color=palette[model], linestyle="none")
    axis.set(xscale="log", xlabel=label, ylabel="MSE (sum/frame)", ylim=(0, top))
    plots.legend_outside(axis)
    figure.suptitle(plots.titled("validation MSE during training (lines) and test MSE at the "
                                "budget (stars)", title)
                    + ("\n▲: an earlier validation MSE above the axis, with its value"
                       if not above.empty else ""), fontsize=9)
    return plots.save(figure, path)


def equal_compute_table(records: list[dict]) -> pd.DataFrame:
    """Per configuration (its row label): the budget, what was spent, the iterations, test MSE
    (mean ± sd over seeds)."""
    rows, labels = [], row_labels(records)
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        if r["status"] == "ok" and (r.get("train") or {}).get("budget"):
            groups.setdefault((labels[id(r)], budget_label(r)), []).append(r)
    for (model, budget), group in groups.items():
        spent = [r["train"]["budget"] for r in group]
        mse = [r["metrics"]["headline"]["mse"] for r in group]
        flops = [s["spent_flops"] for s in spent if s.get("spent_flops")]
        rows.append({
            "model": model,
            "budget": budget,
            "spent FLOPs": f"{np.mean(flops):.3g}" if flops else "",
            "spent train s": f"{np.mean([s['spent_train_s'] for s in spent]):.3g}",
            "iterations": f"{np.mean([s['spent_iterations'] for s in spent]):.0f}",
            "test MSE": (f"{np.mean(mse):.2f}" + (f" ± {np.std(mse, ddof=1):.2f}"
                                                  if len(mse) > 1 else "")),
            "seeds": len(group),
            **({"params": f"{group[-1]['cost']['params']:,}"} if group[-1].get("cost") else {}),
        })
    return pd.DataFrame(rows)


def matched_table(records: list[dict]) -> pd.DataFrame:
    """Per configuration (its row label): the size target, the chosen width, the achieved count
    beside the test MSE."""
    rows, labels = [], row_labels(records)
    groups: dict[str, list[dict]] = {}
    for r in records:
        if r.get("match"):
            groups.setdefault(labels[id(r)], []).append(r)
    for model, group in groups.items():
        info = group[-1]["match"]
        ok = [r["metrics"]["headline"]["mse"] for r in group
              if r["status"] == "ok" and r.get("metrics")]
        rows.append({
            "model": model, "matched": f"{info['by']} = {info['target']:,.0f} "
                                       f"({info.get('target_from', 'number')})",
            "width": (f"{info['width_arg']} {info['default_width']} -> {info['width']}"
                      if info["scalable"] else "not scalable: runs at its own size"),
            "achieved": ("not counted" if info["achieved"] is None
                         else f"{info['achieved']:,.0f}"),
            "vs target": ("" if info["achieved"] is None
                          else f"{info['achieved'] / info['target'] - 1:+.1%}"),
            "test MSE": (f"{np.mean(ok):.2f}" + (f" ± {np.std(ok, ddof=1):.2f}"
                                                 if len(ok) > 1 else "")) if ok else "failed",
        })
    return pd.DataFrame(rows)


def compute_sections(folder: Path, records: list[dict], title: str = "",
                     palette: dict | None = None) -> tuple[list, list]:
    """(index sections, figures) for budgeted and size-matched records; empty when none.
    ``title``: the report's caption (dataset, preset); ``palette``: its model colours."""
    sections, figures = [], []
    matched = matched_table(records)
    if not matched.empty:
        sections.append(("Size-matched models", [
            matched.to_markdown(index=False), "",
            "Each model's width argument was searched for the size closest to the target "
            "(parameters counted on the meta device; FLOPs: one test rollout at batch 1, "
            "PyTorch's flop counter)."]))
    equal = equal_compute_table(records)
    if not equal.empty:
        sections.append(("Test MSE at equal compute", [
            equal.to_markdown(index=False), "",
            "Every model trained until the same budget was spent; its learning-rate and "
            "scheduled-sampling schedules were laid out over the budget (bench/train/budget.py)."]))
        frame = budget_frame(records)
        frame = frame[np.isfinite(frame["mse"].astype("float64"))]  # a NaN has no place on axes
        if not frame.empty:
            figures.append(("Accuracy against training compute",
                            accuracy_vs_compute(frame, folder / "accuracy_vs_compute", title,
                                                palette)[0]))
    return sections, figures
