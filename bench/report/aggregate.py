"""From store records to tidy frames: one row per model, seeds aggregated, compared with a baseline."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

ACCURACY = {  # metric -> (label, lower is better)
    "mse": ("MSE", True),
    "mse_per_pixel": ("MSE/pixel", True),
    "mae": ("MAE", True),
    "ssim": ("SSIM", False),
    "psnr": ("PSNR (dB)", False),
}
COST = {  # cost key -> (label, lower is better, scale)
    "params": ("params (M)", True, 1e-6),
    "gmacs_fvcore": ("GMACs (fvcore)", True, 1),
    "gmacs_torch": ("GMACs (torch)", True, 1),
    "train_seq_s": ("train (seq/s)", False, 1),
    "infer_seq_s": ("infer (seq/s)", False, 1),
    "infer_ms_per_seq_b1": ("infer b1 (ms/seq)", True, 1),
    "train_peak_mb": ("train mem (MB)", True, 1),
    "infer_peak_mb": ("infer mem (MB)", True, 1),
    "train_efficiency": ("train eff. (%)", False, 100),
}
SIGNIFICANCE_LEVEL = 0.05


def accuracy_frame(records: list[dict], baseline: str = "modernn") -> pd.DataFrame:
    """Per model: mean and std of each headline metric over successful seeds, the seed count,
    the status (with the error of a failed model) and a paired test against ``baseline``."""
    rows = []
    per_seed = _per_seed_mse(records)
    for model, group in _by_model(records).items():
        ok = [r for r in group if r["status"] == "ok" and r.get("metrics")]
        row = {"model": model, "seeds": len(ok)}
        row["status"] = "ok" if ok else f"failed: {group[-1].get('error')}"
        for key in ACCURACY:
            values = [r["metrics"]["headline"][key] for r in ok]
            row[key] = float(np.mean(values)) if values else np.nan
            row[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
        row["p_vs_baseline"] = _paired_p(per_seed, model, baseline)
        rows.append(row)
    return pd.DataFrame(rows)


def cost_frame(records: list[dict]) -> pd.DataFrame:
    """Per model: the cost columns of its newest successful record (cost does not vary by seed)."""
    rows = []
    for model, group in _by_model(records).items():
        ok = [r for r in group if r["status"] == "ok" and r.get("cost")]
        row = {"model": model}
        if ok:
            cost = ok[-1]["cost"]
            row.update({key: cost.get(key) for key in COST})
            row["unused_params"] = cost.get("params", 0) - cost.get("used_params", 0)
            walls = [r["train"]["wall_s"] for r in ok if r.get("train")]
            row["train_min"] = float(np.mean(walls)) / 60 if walls else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def per_frame_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for record in records:
        if record["status"] != "ok" or not record.get("metrics"):
            continue
        per_frame = record["metrics"]["per_frame"]
        for t in range(len(per_frame["mse"])):
            rows.append({"model": record["model"], "seed": record["seed"], "frame": t + 1,
                         **{k: v[t] for k, v in per_frame.items()}})
    return pd.DataFrame(rows)


def history_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for record in records:
        for entry in (record.get("train") or {}).get("history", []):
            rows.append({"model": record["model"], "seed": record["seed"], **entry})
    return pd.DataFrame(rows)


def _paired_p(per_seed: dict, model: str, baseline: str) -> float:
    """Two-sided paired t-test of test MSE over the seeds both models ran; NaN if fewer than 2."""
    if model == baseline or baseline not in per_seed or model not in per_seed:
        return np.nan
    seeds = sorted(set(per_seed[model]) & set(per_seed[baseline]))
    if len(seeds) < 2:
        return np.nan
    a = [per_seed[model][s] for s in seeds]
    b = [per_seed[baseline][s] for s in seeds]
    if np.allclose(np.subtract(a, b), np.subtract(a, b)[0]):  # constant difference: t undefined
        return 0.0 if a[0] != b[0] else 1.0
    return float(stats.ttest_rel(a, b).pvalue)


def _per_seed_mse(records: list[dict]) -> dict[str, dict[int, float]]:
    table: dict[str, dict[int, float]] = {}
    for r in records:
        if r["status"] == "ok" and r.get("metrics"):
            table.setdefault(r["model"], {})[r["seed"]] = r["metrics"]["headline"]["mse"]
    return table


def _by_model(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["model"], []).append(record)
    return groups
