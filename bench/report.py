"""Tables and plots from the results store alone (no retraining)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .store import ResultsStore  # noqa: E402

SUMMARY_COLUMNS = {
    "model": "model",
    "status": "status",
    "mse": "MSE (sum/frame)",
    "mse_per_pixel": "MSE (per pixel)",
    "mae": "MAE (sum/frame)",
    "ssim": "SSIM",
    "psnr": "PSNR (dB)",
    "params_m": "params (M)",
    "gmacs_fvcore": "GMACs (fvcore, rollout, batch 1)",
    "train_seq_s": "train (seq/s)",
    "infer_seq_s": "infer (seq/s)",
    "train_peak_mb": "train peak mem (MB)",
    "infer_peak_mb": "infer peak mem (MB)",
    "train_min": "train time (min)",
    "seeds": "seeds",
}


def summary_frame(records: list[dict]) -> pd.DataFrame:
    """One row per model: metrics averaged over its successful seeds, cost, status."""
    rows = []
    for model, group in _by_model(records).items():
        ok = [r for r in group if r["status"] == "ok"]
        row = {"model": model, "status": "ok" if ok else "failed", "seeds": len(ok)}
        if ok:
            headlines = [r["metrics"]["headline"] for r in ok if r.get("metrics")]
            row.update(_mean_dicts(headlines) if headlines else {})
            cost = ok[-1]["cost"]
            row.update({k: cost.get(k) for k in
                        ("gmacs_fvcore", "train_seq_s", "infer_seq_s", "train_peak_mb",
                         "infer_peak_mb")})
            row["params_m"] = cost["params"] / 1e6
            walls = [r["train"]["wall_s"] for r in ok if r.get("train")]
            row["train_min"] = np.mean(walls) / 60 if walls else 0.0
        else:
            row["status"] = f"failed: {group[-1]['error']}"
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame[[c for c in SUMMARY_COLUMNS if c in frame]].rename(columns=SUMMARY_COLUMNS)


def per_frame_frame(records: list[dict]) -> pd.DataFrame:
    rows = []
    for record in records:
        if record["status"] != "ok":
            continue
        per_frame = record["metrics"]["per_frame"]
        for t in range(len(per_frame["mse"])):
            rows.append({"model": record["model"], "seed": record["seed"], "frame": t + 1,
                         **{k: v[t] for k, v in per_frame.items()}})
    return pd.DataFrame(rows)


def write_report(folder: str | Path) -> Path:
    """Rebuild summary.md/.csv, per_frame.csv and the plots in ``folder`` from its store."""
    folder = Path(folder)
    records = [r for r in ResultsStore(folder).latest() if r["mode"] == "train"]
    if not records:
        raise ValueError(f"no training records in {folder}; run the benchmark first")
    summary = summary_frame(records)
    summary.to_csv(folder / "summary.csv", index=False)
    (folder / "summary.md").write_text(_markdown(summary, records))
    per_frame = per_frame_frame(records)
    per_frame.to_csv(folder / "per_frame.csv", index=False)
    if not per_frame.empty:
        _plot_per_frame(per_frame, folder / "per_frame.png")
        _plot_cost(records, folder / "mse_vs_flops.png")
    for example in sorted((folder / "examples").glob("*.npz")):
        _plot_examples(example, example.with_suffix(".png"))
    return folder / "summary.md"


def _markdown(summary: pd.DataFrame, records: list[dict]) -> str:
    info = records[0]["dataset_info"]
    devices = sorted({r["device_name"] for r in records})
    lines = [
        f"# {info['name']}, preset `{records[0]['preset']}`",
        "",
        f"Data: {info['source']}.",
        "",
        summary.to_markdown(index=False, floatfmt=".4g"),
        "",
        "MSE and MAE are summed over the pixels of a frame and averaged over the predicted "
        "frames and test clips (the field's convention); the per-pixel MSE is labelled. "
        "Predictions are clipped to [0, 1] before every metric; SSIM uses 7x7 uniform windows on "
        "uint8 frames. GMACs: fvcore's count (one multiply-add = 1) of one whole test rollout at "
        "batch 1. Throughput: sequences per second, median of timed repeats after warm-up. "
        f"Measured on: {', '.join(devices)}.",
        "",
    ]
    return "\n".join(lines)


def _plot_per_frame(per_frame: pd.DataFrame, path: Path) -> None:
    sns.set_theme(style="whitegrid")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric, label in ((axes[0], "mse", "MSE per frame (sum over pixels)"),
                                (axes[1], "ssim", "SSIM per frame")):
        sns.lineplot(per_frame, x="frame", y=metric, hue="model", marker="o", ax=axis)
        axis.set(xlabel="predicted frame", ylabel=label)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_cost(records: list[dict], path: Path) -> None:
    rows = [{"model": r["model"], "GMACs (fvcore)": r["cost"]["gmacs_fvcore"],
             "MSE": r["metrics"]["headline"]["mse"], "params (M)": r["cost"]["params"] / 1e6}
            for r in records if r["status"] == "ok"]
    frame = pd.DataFrame(rows).groupby("model", as_index=False).mean(numeric_only=True)
    sns.set_theme(style="whitegrid")
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    sns.scatterplot(frame, x="GMACs (fvcore)", y="MSE", hue="model", size="params (M)",
                    sizes=(40, 400), ax=axis)
    for _, row in frame.iterrows():
        axis.annotate(row["model"], (row["GMACs (fvcore)"], row["MSE"]),
                      textcoords="offset points", xytext=(6, 4), fontsize=8)
    axis.set(title="test MSE against compute (marker size: parameters)")
    axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_examples(npz_path: Path, png_path: Path) -> None:
    with np.load(npz_path) as arrays:
        rows = [("input", arrays["input"]), ("target", arrays["target"]),
                ("prediction", arrays["prediction"])]
    clips = rows[0][1].shape[0]
    frames = max(a.shape[1] for _, a in rows)
    figure, axes = plt.subplots(3 * clips, frames, figsize=(frames * 0.9, 3 * clips * 0.95),
                                squeeze=False)
    for clip in range(clips):
        for r, (label, array) in enumerate(rows):
            line = axes[clip * 3 + r]
            for t, axis in enumerate(line):
                axis.axis("off")
                if t < array.shape[1]:
                    axis.imshow(_displayable(array[clip, t]), cmap="gray", vmin=0, vmax=255)
            line[0].set_title(f"{label} (clip {clip + 1})", fontsize=7, loc="left")
    figure.suptitle(npz_path.stem.replace("__", ", "), fontsize=9)
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)


def _displayable(frame: np.ndarray) -> np.ndarray:
    """[C, H, W] uint8 -> a 2-D image (first channel) or RGB."""
    return frame[0] if frame.shape[0] != 3 else frame.transpose(1, 2, 0)


def _by_model(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["model"], []).append(record)
    return groups


def _mean_dicts(dicts: list[dict]) -> dict:
    return {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]}
