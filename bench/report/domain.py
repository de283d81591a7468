"""The scores weather and radar users read, in the report of a dataset that declares them
(bench.evaluation.skill / gridded: records' ``metrics.skill`` and ``metrics.latitude_weighted``):
headline columns for the accuracy table, a per-threshold table, per-lead-time CSVs and plots."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import plots

SKILL, GRIDDED = "skill", "latitude_weighted"
TITLE = "Scores of the field (skill at thresholds, latitude-weighted errors)"
# headline column -> (record entry, its headline key, label ({u}: the unit), lower is better)
DOMAIN = {
    "csi_m": (SKILL, "csi_m", "CSI-M", False),
    "csi_m_pool4": (SKILL, "csi_m_pool4", "CSI-M pool4", False),
    "csi_m_pool16": (SKILL, "csi_m_pool16", "CSI-M pool16", False),
    "hss_m": (SKILL, "hss_m", "HSS-M", False),
    "wrmse": (GRIDDED, "rmse", "wRMSE ({u})", True),
    "acc": (GRIDDED, "acc", "ACC", False),
}
PER_THRESHOLD = ("csi", "pod", "sucr", "bias", "hss", "csi_pool4", "csi_pool16")
NOTE_SKILL = (
    "Skill scores ({source}): prediction (clipped to [0, 1]) and target back in {unit}s, "
    "binarised with value >= threshold; hits, misses, false alarms and correct negatives summed "
    "over every test pixel and frame per threshold (Earthformer's aggregation), then CSI = "
    "H/(H+M+F), POD = H/(H+M), SUCR = H/(H+F) = 1 - FAR, BIAS = (H+F)/(H+M), HSS = 2(HR-MF)/"
    "((H+M)(M+R)+(H+F)(F+R)). CSI-M and the other means average the thresholds the test "
    "targets reach ({scored}); pool4/pool16: both max-pooled in 4x4 / 16x16 blocks first "
    "(PreDiff, DiffCast). Undefined scores (a zero denominator) are n/a, never 0.")
NOTE_GRIDDED = (
    "Latitude-weighted scores (Rasp et al. 2020, WeatherBench, eqs. 1-3), in {unit}: weights "
    "cos(latitude) normalised to mean 1; wRMSE = the root of the weighted mean squared error of "
    "each forecast (clip and lead time), averaged over forecasts; ACC = the weighted correlation "
    "of forecast and target anomalies from the climatology ({climatology}), per lead time, "
    "averaged over lead times.")


def domain_values(record: dict) -> dict:
    """A record's headline domain scores, ``{column: value or None}``, for the entries it has."""
    metrics = record.get("metrics") or {}
    return {column: metrics[entry]["headline"].get(key)
            for column, (entry, key, _label, _lower) in DOMAIN.items() if entry in metrics}


def domain_unit(records: list[dict]) -> str | None:
    """The unit of the latitude-weighted scores (None: no record has them)."""
    for record in records:
        entry = (record.get("metrics") or {}).get(GRIDDED)
        if entry:
            return entry["unit"]
    return None


def write_domain_scores(out: Path, records: list[dict], labels: dict[int, str], caption: str,
                        palette: dict) -> tuple[list[str], list[tuple[str, Path]]]:
    """The report's "Skill scores" / "Latitude-weighted scores" lines and figures for the
    records that hold them (``labels``: ``id(record)`` -> row label), with ``skill.csv`` and
    ``lead_scores.csv`` in ``out``; nothing for datasets that declare neither."""
    ok = [r for r in records if r.get("status") == "ok" and r.get("metrics")]
    skilled = [r for r in ok if SKILL in r["metrics"]]
    gridded = [r for r in ok if GRIDDED in r["metrics"]]
    lines, figures = [], []
    lead = _lead_frame(skilled + gridded, labels)
    if skilled:
        thresholds = _threshold_frame(skilled, labels)
        thresholds.to_csv(out / "skill.csv", index=False)
        entry = skilled[0]["metrics"][SKILL]
        lines += [_threshold_table(thresholds, skilled, labels, entry["unit"]), "",
                  NOTE_SKILL.format(source=entry["source"], unit=entry["unit"],
                                    scored=", ".join(f"{v:g}" for v in entry["thresholds_scored"])
                                    or "none"), ""]
        figures.append(("Skill scores", _skill_plot(thresholds, lead, entry["unit"],
                                                    out / "skill", caption, palette)[0]))
    if gridded:
        entry = gridded[0]["metrics"][GRIDDED]
        lines += [NOTE_GRIDDED.format(unit=entry["unit"], climatology=entry["climatology"]), ""]
        figures.append(("Latitude-weighted scores",
                        _gridded_plot(lead, entry["unit"], out / "weather", caption, palette)[0]))
    if not lead.empty:
        lead.to_csv(out / "lead_scores.csv", index=False)
    return lines, figures


def _threshold_frame(records: list[dict], labels: dict[int, str]) -> pd.DataFrame:
    rows = []
    for record in records:
        entry = record["metrics"][SKILL]
        for k, threshold in enumerate(entry["thresholds"]):
            rows.append({"model": labels.get(id(record), record["model"]), "seed": record["seed"],
                         "threshold": threshold,
                         **{name: values[k] for name, values in entry["per_threshold"].items()}})
    return pd.DataFrame(rows).astype({n: float for n in PER_THRESHOLD if n in rows[0]})


def _lead_frame(records: list[dict], labels: dict[int, str]) -> pd.DataFrame:
    rows = {}
    for record in records:
        for entry_name, keys in ((SKILL, ("csi_m", "csi_m_pool4", "csi_m_pool16", "hss_m")),
                                 (GRIDDED, ("rmse", "acc"))):
            per_lead = (record["metrics"].get(entry_name) or {}).get("per_lead", {})
            for key in (k for k in keys if k in per_lead):
                for t, value in enumerate(per_lead[key]):
                    row = rows.setdefault((id(record), t), {
                        "model": labels.get(id(record), record["model"]), "seed": record["seed"],
                        "lead": t + 1})
                    row["wrmse" if key == "rmse" else key] = value
    return pd.DataFrame(list(rows.values())).astype(float, errors="ignore")


def _threshold_table(frame: pd.DataFrame, records: list[dict], labels: dict[int, str],
                     unit: str) -> str:
    """CSI per threshold, mean over seeds, one row per model, beside the records' own POD-M,
    SUCR-M and BIAS-M (means over the thresholds the targets reach), as Markdown. A value
    undefined in any seed is n/a, as in the accuracy table."""
    means = frame.groupby(["model", "threshold"], sort=False)["csi"].agg(_mean_of_all)
    table = means.unstack("threshold")
    table.columns = [f"CSI ≥{t:g}" for t in table.columns]
    headline = pd.DataFrame([{"model": labels.get(id(r), r["model"]),
                              **{n: r["metrics"][SKILL]["headline"].get(f"{n}_m")
                                 for n in ("pod", "sucr", "bias")}} for r in records])
    headline = headline.astype({n: float for n in ("pod", "sucr", "bias")})
    for name, label in (("pod", "POD"), ("sucr", "SUCR"), ("bias", "BIAS")):
        table[f"{label}-M"] = headline.groupby("model", sort=False)[name].agg(_mean_of_all)
    shown = table.map(lambda v: "n/a" if pd.isna(v) else f"{v:.3f}")
    return (f"CSI per threshold ({unit}s), and means over the thresholds the targets reach of "
            "POD, SUCR and BIAS (means over seeds):\n\n"
            + shown.reset_index().to_markdown(index=False, disable_numparse=True))


def _mean_of_all(values: pd.Series) -> float:
    """The mean over seeds, NaN (n/a) where any seed's value is undefined."""
    return float(values.mean(skipna=False))


@plots.theme()
def _skill_plot(thresholds: pd.DataFrame, lead: pd.DataFrame, unit: str, path: Path,
                caption: str, palette: dict) -> list[Path]:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for model, group in thresholds.groupby("model", sort=False):
        means = group.groupby("threshold").mean(numeric_only=True)
        left.plot(means.index, means["csi"], marker="o", color=palette.get(model), label=model)
        if "csi_m" in lead:
            by_lead = lead[lead["model"] == model].groupby("lead").mean(numeric_only=True)
            right.plot(by_lead.index, by_lead["csi_m"], marker=".", color=palette.get(model),
                       label=model)
    left.set(xlabel=f"threshold ({unit})", ylabel="CSI", ylim=(-0.02, 1.02),
             title="CSI per threshold (means over seeds)")
    left.set_xticks(sorted(thresholds["threshold"].unique()))
    right.set(xlabel="lead time (predicted frame)", ylabel="CSI-M", ylim=(-0.02, 1.02),
              title="CSI-M against lead time")
    right.xaxis.get_major_locator().set_params(integer=True)
    plots.legend_outside(right, [left, right])
    figure.suptitle(plots.titled("skill scores", caption), fontsize=10)
    return plots.save(figure, path)


@plots.theme()
def _gridded_plot(lead: pd.DataFrame, unit: str, path: Path, caption: str,
                  palette: dict) -> list[Path]:
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for model, group in lead.dropna(subset=["wrmse"]).groupby("model", sort=False):
        by_lead = group.groupby("lead").mean(numeric_only=True)
        for axis, key in zip(axes, ("wrmse", "acc"), strict=True):
            axis.plot(by_lead.index, by_lead[key], marker=".", color=palette.get(model),
                      label=model)
    axes[0].set(xlabel="lead time (predicted frame)", ylabel=f"wRMSE ({unit})",
                title="latitude-weighted RMSE")
    axes[1].set(xlabel="lead time (predicted frame)", ylabel="ACC",
                title="anomaly correlation (training climatology)")
    for axis in axes:
        axis.xaxis.get_major_locator().set_params(integer=True)
    plots.legend_outside(axes[1], axes)
    figure.suptitle(plots.titled("latitude-weighted scores per lead time", caption), fontsize=10)
    return plots.save(figure, path)
