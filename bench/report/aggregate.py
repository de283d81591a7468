"""From store records to tidy frames: one row per model, seeds aggregated, compared with a
reference model."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..store import one_line
from . import statistics

ACCURACY = {  # metric -> (label, lower is better)
    "mse": ("MSE", True),
    "mse_per_pixel": ("MSE/pixel", True),
    "mae": ("MAE", True),
    "ssim": ("SSIM", False),
    "psnr": ("PSNR (dB)", False),
}
# Metrics that only some runs compute (``--lpips``): a column when any record has them.
OPTIONAL = {"lpips": ("LPIPS", True)}
# Metrics in the data's own units, for datasets whose records declare them
# (``dataset_info.normalization.data_units``, e.g. K): key -> (label with {u} for the unit and
# {u2} for its square, lower is better). Computed from the per-pixel metrics on [0, 1] and the unit's scale s.
IN_UNITS = {
    "mse_units": ("MSE/pixel ({u2})", True),  # MSE/pixel * s^2
    "rmse_units": ("RMSE ({u})", True),  # sqrt(MSE/pixel) * s: over every test pixel
    "mae_units": ("MAE/pixel ({u})", True),  # MAE / (C*H*W) * s
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


def accuracy_frame(records: list[dict], reference: str | None = None) -> pd.DataFrame:
    """Per model: mean and std of each headline metric over successful seeds, the seed count,
    the status (with the error of a failed model), a 95% bootstrap interval of its own test MSE
    over the test clips, and, given a ``reference`` model, the difference of its test MSE from
    the reference's with a paired bootstrap interval over the same test clips and (with 3 or more
    seeds, for trained models) a paired t-test over seeds (bench.report.statistics)."""
    groups = _by_model(records)
    ref_ok = _ok(groups.get(reference, [])) if reference else []
    ref_clips, ref_fixed = _per_clip_mse(ref_ok), is_deterministic(ref_ok)
    ref_seeds = {r["seed"]: r["metrics"]["headline"]["mse"] for r in ref_ok}
    optional = [key for key in OPTIONAL
                if any(key in r["metrics"]["headline"] for r in _ok(records))]
    rows = []
    for model, group in groups.items():
        ok = _ok(group)
        row = {"model": model, "seeds": len(ok), "deterministic": is_deterministic(ok)}
        row["status"] = "ok" if ok else f"failed: {one_line(group[-1].get('error'))}"
        for key in ACCURACY:
            values = [r["metrics"]["headline"][key] for r in ok]
            row[key] = float(np.mean(values)) if values else np.nan
            row[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
        for key in optional:  # NaN for a model whose records lack it
            values = [r["metrics"]["headline"][key] for r in ok if key in r["metrics"]["headline"]]
            row[key] = float(np.mean(values)) if values else np.nan
            row[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
        in_units = [metrics_in_units(r) for r in ok]
        if any(in_units):
            for key in IN_UNITS:
                values = [u[key] for u in in_units if u]
                row[key] = float(np.mean(values)) if values else np.nan
                row[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
            row["unit"] = next(u["unit"] for u in in_units if u)
        clips = _per_clip_mse(ok)
        row["mse_ci_low"] = row["mse_ci_high"] = np.nan
        if clips and len({len(v) for v in clips.values()}) == 1:
            _, row["mse_ci_low"], row["mse_ci_high"] = statistics.paired_bootstrap(
                np.mean(list(clips.values()), axis=0))
        row.update(delta_mse=np.nan, delta_mse_low=np.nan, delta_mse_high=np.nan,
                   paired_seeds=0, p_seeds=np.nan)
        if reference and ok and ref_ok and model != reference:
            diff, paired = statistics.paired_clip_differences(clips, ref_clips, row["deterministic"],
                                                              ref_fixed)
            if diff is not None:
                row["delta_mse"], row["delta_mse_low"], row["delta_mse_high"] = \
                    statistics.paired_bootstrap(diff)
                row["paired_seeds"] = paired
            else:  # records without per-clip values: the difference of means, no interval
                row["delta_mse"] = row["mse"] - float(np.mean(list(ref_seeds.values())))
            if not row["deterministic"] and not ref_fixed:
                row["p_seeds"] = statistics.seeds_test(
                    {r["seed"]: r["metrics"]["headline"]["mse"] for r in ok}, ref_seeds)
        rows.append(row)
    return pd.DataFrame(rows)


def unit_of(records: list[dict]) -> dict | None:
    """The ``data_units`` entry the records' dataset declares (None: no physical units)."""
    for record in records:
        units = ((record.get("dataset_info") or {}).get("normalization") or {}).get("data_units")
        if units:
            return units
    return None


def metrics_in_units(record: dict) -> dict | None:
    """A record's headline MSE/pixel, RMSE and MAE/pixel in its dataset's declared units:
    ``MSE/pixel * s**2``, ``sqrt(MSE/pixel) * s`` and ``MAE / (C*H*W) * s`` for the scale ``s``
    of ``x = x01 * s + offset`` (REFERENCE.md: MAE is summed over a frame's C*H*W values,
    MSE/pixel is the per-pixel mean; the offset cancels in every difference). The RMSE is the
    root of the mean squared error over every test pixel, as OpenSTL's ``RMSE``. None when the
    dataset declares no units, or declares per-channel scales that differ (a metric averaged
    over channels cannot be converted then)."""
    units = unit_of([record])
    if not units or not record.get("metrics"):
        return None
    scales = set(units["scale"])
    if len(scales) != 1:
        return None
    scale = scales.pop()
    info = record["dataset_info"]
    pixels = info["channels"] * info["height"] * info["width"]
    headline = record["metrics"]["headline"]
    return {"unit": units["unit"], "scale": scale,
            "mse_units": headline["mse_per_pixel"] * scale**2,
            "rmse_units": float(np.sqrt(headline["mse_per_pixel"])) * scale,
            "mae_units": headline["mae"] / pixels * scale}


def is_deterministic(records: list[dict]) -> bool:
    """Models without trainable parameters (persistence, blank, mean): no training, so the seed
    changes nothing that a test over seeds could measure."""
    costs = [r["cost"] for r in records if r.get("cost")]
    return bool(costs) and all(c.get("params") == 0 for c in costs)


def _ok(group: list[dict]) -> list[dict]:
    return [r for r in group if r["status"] == "ok" and r.get("metrics")]


def _per_clip_mse(records: list[dict]) -> dict[int, np.ndarray]:
    return {r["seed"]: np.asarray(r["metrics"]["per_clip"]["mse"], dtype=np.float64)
            for r in records if (r["metrics"].get("per_clip") or {}).get("mse")}


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


def _by_model(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["model"], []).append(record)
    return groups
