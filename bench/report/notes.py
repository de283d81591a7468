"""The notes under a report's tables: the metric conventions (and where OpenSTL's is), data
units, LPIPS, the comparison with the reference model and its pairing, failures and non-finite
values, and where the cost figures came from."""
from __future__ import annotations

import numpy as np

from . import statistics
from .aggregate import DISAGREEMENT, OPENSTL, busy_rows, unit_of

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


def openstl_note(records: list[dict]) -> str:
    """Which convention the table follows, and where OpenSTL's is (empty for records without it)."""
    if not any((r.get("metrics") or {}).get(OPENSTL) for r in records):
        return ""
    return (" The table follows this harness's convention; OpenSTL's (openstl/core/metrics.py at "
            "c74deb5: MSE and MAE before clipping, SSIM on float frames with data range 2) is in "
            "summary.csv's openstl_* columns (docs/metrics.md).")


def selection_note(records: list[dict]) -> str:
    """Under a preset of per-model recipes (``config.recipe``, e.g. openstl): where checkpoints
    were selected, which differs from OpenSTL's protocol."""
    if not any((r.get("config") or {}).get("recipe") for r in records):
        return ""
    return (" Each model trained with its recipe of this preset (config.recipe in the records: "
            "the source of each value); checkpoints were selected on our validation split (clips "
            "generated from the training digits), whereas OpenSTL selects on the test set.")


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
            "Models without trainable parameters (persistence, blank, mean, optical_flow) do not "
            "depend on the seed and are paired with every seed.")
    if seeds_tested:
        note += (f" p vs {reference} (seeds): two-sided paired t-test of test MSE over the seeds "
                 f"both ran, for trained models with {statistics.MIN_SEEDS_FOR_TEST} or more "
                 "seeds.")
    else:
        note += (f" No test over seeds: it needs {statistics.MIN_SEEDS_FOR_TEST} or more seeds of "
                 "a trained model and of the reference.")
    return note


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


def cost_setup(records: list[dict]) -> dict:
    """What the cost figures were measured on: devices, mixed precision, batch and threads of the
    records' profiles (each a sorted list of the values seen)."""
    costs = [r["cost"] for r in records if r.get("cost")]
    return {
        "devices": sorted({r["device_name"] for r in records}),
        "amp": sorted({str(c.get("amp")) for c in costs}),
        "batch": sorted({str(c.get("bench_batch")) for c in costs}),
        "threads": sorted({str(c.get("threads")) for c in costs}),
    }


def measurement_note(setup: dict) -> str:
    """How the cost table's figures were counted and measured, and on what (``cost_setup``)."""
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
