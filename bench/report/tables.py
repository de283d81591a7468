"""Accuracy and cost tables as Markdown, CSV and LaTeX (booktabs), best value per column marked."""
from __future__ import annotations

import math

import pandas as pd

from .aggregate import ACCURACY, COST, IN_UNITS, OPENSTL, OPTIONAL
from .domain import DOMAIN

DIGITS = {"mse": 2, "mse_per_pixel": 5, "mae": 1, "ssim": 4, "psnr": 2, "lpips": 4}


def accuracy_table(acc: pd.DataFrame, latex: bool = False, reference: str | None = None
                   ) -> pd.DataFrame:
    """Display table: mean ± std per metric, best bold; given a ``reference`` model present in
    ``acc``, the difference of each model's test MSE from it with its paired bootstrap interval,
    and a column of t-test p-values over seeds only where some model could be tested (3 or more
    seeds, trained). ``latex``: cells escaped for LaTeX with its markup (bold, $\\pm$); the
    headers stay plain text in both cases (:func:`to_latex` escapes them)."""
    out = pd.DataFrame({"model": acc["model"].map(lambda m: text_cell(m, latex))})
    ok = acc["status"] == "ok"
    shown = {**ACCURACY, **{k: v for k, v in OPTIONAL.items() if k in acc}}
    for key, (label, lower) in shown.items():
        best = _best(acc.loc[ok, key], lower)
        cells = []
        for _, row in acc.iterrows():
            cell = mean_std(row[key], row[f"{key}_std"], DIGITS[key], latex)
            if key in OPTIONAL and row["status"] == "ok" and pd.isna(row[key]):
                cell = "n/a"  # this model's records were tested without it
            elif row["status"] == "ok" and pd.isna(row[key]):
                cell = "NaN"  # a successful run's metric that is not a number: shown as such
            if row["status"] == "ok" and best is not None and row[key] == best:
                cell = _bold(cell, latex)
            cells.append(cell)
        out[label] = cells
    if "rmse_units" in acc:  # the dataset declares physical units (e.g. K)
        unit = acc["unit"].dropna().iloc[0]
        for key, (label, lower) in IN_UNITS.items():
            best = _best(acc.loc[ok, key], lower)
            digits = _decimals(acc[key])
            label = label.format(u=unit, u2=f"{unit}²" if unit.isalnum() else f"({unit})²")
            out[label] = [
                _bold(cell, latex) if row["status"] == "ok" and best is not None
                and row[key] == best else cell
                for _, row in acc.iterrows()
                for cell in [mean_std(row[key], row[f"{key}_std"], digits, latex)]]
    for key, (_entry, _key, label, lower) in DOMAIN.items():  # declared by the dataset
        if key in acc:
            best = _best(acc.loc[ok, key], lower)
            label = label.format(u=acc["domain_unit"].dropna().iloc[0]
                                 if "domain_unit" in acc else "")
            out[label] = [
                "n/a" if row["status"] == "ok" and pd.isna(row[key]) else
                _bold(cell, latex) if row["status"] == "ok" and best is not None
                and row[key] == best else cell
                for _, row in acc.iterrows()
                for cell in [mean_std(row[key], row[f"{key}_std"], 3, latex)]]
    out["seeds"] = acc["seeds"]
    if reference is not None and reference in set(acc.get("name", acc["model"])):
        out[f"Δ MSE vs {reference} [95% CI]"] = [_delta(row, reference) for _, row in acc.iterrows()]
        if acc["p_seeds"].notna().any():
            out[f"p vs {reference} (seeds)"] = acc["p_seeds"].map(
                lambda p: "" if math.isnan(p) else f"{p:.3f}")
    if not ok.all():
        out["status"] = acc["status"].map(lambda s: text_cell(s, latex))
    return out


def _delta(row, reference: str) -> str:
    """A model's difference from the reference of its protocol with its interval (digits and
    signs only: the same text in Markdown and LaTeX)."""
    if row.get("is_reference", row["model"] == reference):  # its row of each protocol
        return "reference"
    if pd.isna(row["delta_mse"]):
        return ""
    digits = DIGITS["mse"]
    text = f"{row['delta_mse']:+.{digits}f}"
    if not pd.isna(row["delta_mse_low"]):
        text += f" [{row['delta_mse_low']:+.{digits}f}, {row['delta_mse_high']:+.{digits}f}]"
    else:
        text += " (no per-clip values)"
    return text


def cost_table(cost: pd.DataFrame, latex: bool = False) -> pd.DataFrame:
    out = pd.DataFrame({"model": cost["model"].map(lambda m: text_cell(m, latex))})
    for key, (label, lower, scale) in COST.items():
        if key not in cost:
            continue
        values = pd.to_numeric(cost[key], errors="coerce") * scale
        best = _best(values[values > 0] if lower else values, lower)
        out[label] = [
            "" if pd.isna(v) else _bold(_number(v), latex) if best is not None and v == best
            else _number(v) for v in values
        ]
    if "unused_params" in cost and (cost["unused_params"].fillna(0) > 0).any():
        out["unused params"] = cost["unused_params"].map(lambda n: "" if pd.isna(n) else f"{int(n):,}")
    return out


def csv_table(acc: pd.DataFrame, cost: pd.DataFrame) -> pd.DataFrame:
    """Machine-readable: every number as a number, one row per model; the OpenSTL-convention
    columns (``openstl_*``, records that hold them) last, after the cost's."""
    table = acc.merge(cost, on="model", how="left")
    late = [c for c in table.columns if c.startswith(f"{OPENSTL}_")]
    return table[[c for c in table.columns if c not in late] + late]


def to_latex(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table of a display table built with ``latex=True`` (its cells already
    escaped, with markup); the headers and the caption are escaped here."""
    table = table.rename(columns=latex_escape)
    return table.to_latex(index=False, escape=False, caption=latex_escape(caption), label=label,
                          column_format="l" + "r" * (len(table.columns) - 1))


def _best(values: pd.Series, lower: bool):
    values = values.dropna()
    if len(values) < 2:
        return None
    return values.min() if lower else values.max()


def mean_std(mean: float, std: float, digits: int, latex: bool) -> str:
    """A mean (and standard deviation when there is one) at ``digits`` decimals: ``12.34 ± 0.56``
    (``$\\pm$`` in LaTeX); a missing mean reads ``failed`` (``--`` in LaTeX)."""
    if pd.isna(mean):
        return "failed" if not latex else "--"
    text = f"{mean:.{digits}f}"
    if not pd.isna(std):
        text += (r" $\pm$ " if latex else " ± ") + f"{std:.{digits}f}"
    return text


def _decimals(values: pd.Series) -> int:
    """Decimals that give a column about four significant digits (1.051, 16.69, 0.6567)."""
    largest = pd.to_numeric(values, errors="coerce").abs().max()
    if pd.isna(largest) or largest == 0:
        return 3
    return max(0, 3 - math.floor(math.log10(largest)))


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _bold(text: str, latex: bool) -> str:
    return rf"\textbf{{{text}}}" if latex else f"**{text}**"


def text_cell(text: str, latex: bool) -> str:
    """A text cell: LaTeX-escaped, or for Markdown with no "|" (which would split the cell)."""
    return latex_escape(text) if latex else str(text).replace("|", "/")


# LaTeX's special characters, and the non-ASCII ones the harness writes, which pdflatex's
# default input encoding does not all know (√), as text or math that every engine compiles.
_LATEX = str.maketrans({
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "%": r"\%", "&": r"\&",
    "#": r"\#", "$": r"\$", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "Δ": r"$\Delta$", "±": r"$\pm$", "×": r"$\times$", "²": r"$^2$", "√": r"$\surd$",
})


def latex_escape(text) -> str:
    """``text`` as LaTeX text: every special character escaped in one pass (so an escape's own
    backslash and braces are never escaped again), e.g. ``predrnn_v2`` -> ``predrnn\\_v2``,
    ``[95% CI]`` -> ``[95\\% CI]``."""
    return str(text).translate(_LATEX)
