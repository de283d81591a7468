"""Figures (seaborn; PNG and PDF) and example frames (PNG grid and animated GIF)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from PIL import Image  # noqa: E402

# No timestamps or version strings in the files: rebuilding a report from the same store writes
# the same bytes, so rebuilding committed example results leaves them unmodified.
_NO_METADATA = {".png": {"Software": None}, ".pdf": {"Creator": None, "Producer": None,
                                                       "CreationDate": None}}


def savefig(figure, path: Path, dpi: int) -> Path:
    figure.savefig(path, dpi=dpi, metadata=_NO_METADATA[path.suffix])
    return path


def save(figure, path: Path) -> list[Path]:
    figure.tight_layout()
    paths = [savefig(figure, path.with_suffix(suffix), 120) for suffix in (".png", ".pdf")]
    plt.close(figure)
    return paths


def model_palette(models) -> dict[str, tuple]:
    """One colour per model, in the order the models first appear (the grid's order), so that
    every plot of a report gives a model the same colour."""
    names = list(dict.fromkeys(models))
    return dict(zip(names, sns.color_palette(n_colors=len(names)), strict=True))


def per_frame(per_frame: pd.DataFrame, path: Path, title: str = "",
              palette: dict | None = None) -> list[Path]:
    """MSE and SSIM per predicted frame; bands are one standard deviation over seeds."""
    sns.set_theme(style="whitegrid")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric, label in ((axes[0], "mse", "MSE per frame (sum over pixels)"),
                                (axes[1], "ssim", "SSIM per frame")):
        sns.lineplot(per_frame, x="frame", y=metric, hue="model", marker="o", errorbar="sd", ax=axis,
                     legend=axis is axes[1], palette=palette)
        axis.set(xlabel="predicted frame", ylabel=label)
        axis.xaxis.get_major_locator().set_params(integer=True)  # frames are whole numbers
    legend_outside(axes[1])
    figure.suptitle(titled("per-frame accuracy (bands: ± 1 s.d. over seeds)", title), fontsize=10)
    return save(figure, path)


def pareto(acc: pd.DataFrame, cost: pd.DataFrame, path: Path, title: str = "",
           palette: dict | None = None) -> list[Path]:
    """Test MSE against compute and against training throughput, with the Pareto front.

    Trained models are points with error bars: ± 1 s.d. over seeds where a model ran several,
    else the 95% bootstrap interval of its mean over test clips. Models without parameters
    (persistence, blank, mean) have no cost to place them by: they are horizontal reference lines.
    The MSE axis starts at 0, so a 1% difference looks like one."""
    frame = acc[acc["status"] == "ok"].merge(cost, on="model")
    frame["params (M)"] = frame["params"] / 1e6
    trivial = frame[frame["params"].fillna(0) == 0] if "params" in frame else frame.iloc[:0]
    trained = frame.drop(trivial.index)
    sns.set_theme(style="whitegrid")
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    panels = ((axes[0], "gmacs_fvcore", "GMACs per test rollout (fvcore)", True),
              (axes[1], "train_seq_s", "training throughput (sequences/s)", False))
    top = frame["mse"].max() if not frame.empty else 1.0
    for axis, key, label, lower in panels:
        points = trained.dropna(subset=[key]) if key in trained else trained.iloc[:0]
        points = points[points[key] > 0]
        if points.empty and trivial.empty:
            axis.set_visible(False)
            continue
        if not points.empty:
            low, high = _error_bars(points)
            axis.errorbar(points[key], points["mse"], yerr=[low, high], fmt="none", ecolor="0.4",
                          elinewidth=1, capsize=3, zorder=1)
            sns.scatterplot(points, x=key, y="mse", hue="model", size="params (M)", palette=palette,
                            sizes=(40, 400), ax=axis, legend=axis is axes[0], zorder=2)
            for _, row in points.iterrows():
                axis.annotate(row["model"], (row[key], row["mse"]), textcoords="offset points",
                              xytext=(7, 5), fontsize=8)
            front = _pareto_front(points[key].to_numpy(), points["mse"].to_numpy(), lower)
            axis.plot(*front, color="0.3", linestyle="--", linewidth=1, label="Pareto front",
                      drawstyle="steps-post" if lower else "steps-pre")
            if lower and points[key].max() / max(points[key].min(), 1e-12) > 20:
                axis.set_xscale("log")
            if len(points) == 1:  # one point: give the axis some width around it
                value = points[key].iloc[0]
                axis.set_xlim(value * 0.5, value * 1.5)
            else:  # room for the markers and their names inside the axes
                axis.margins(x=0.2)
        for _, row in trivial.iterrows():
            axis.axhline(row["mse"], color="0.55", linestyle=":", linewidth=1.2, zorder=0)
            axis.annotate(f"{row['model']} (no training)", (0.01, row["mse"]),
                          xycoords=("axes fraction", "data"), textcoords="offset points",
                          xytext=(0, 3), fontsize=8, color="0.35")
        axis.set(xlabel=label, ylabel="test MSE (sum/frame)", ylim=(0, top * 1.12))
    if axes[0].get_legend():
        legend_outside(axes[0], rounded=True)
    figure.suptitle(titled("accuracy against cost", title) + "\nmarker size: parameters; error "
                    "bars: ± 1 s.d. over seeds, or the 95% bootstrap interval over test clips for "
                    "one seed; dotted: baselines without training", fontsize=9)
    return save(figure, path)


def _error_bars(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Below and above each point: ± s.d. over seeds (2+ seeds), else the bootstrap interval."""
    std = points["mse_std"].to_numpy(dtype=float)
    low = np.where(np.isnan(std), points["mse"] - points["mse_ci_low"], std)
    high = np.where(np.isnan(std), points["mse_ci_high"] - points["mse"], std)
    return np.nan_to_num(low), np.nan_to_num(high)


def legend_outside(axis, rounded: bool = False) -> None:
    """The legend to the right of the axes, never over data; numbers (sizes) rounded."""
    handles, labels = axis.get_legend_handles_labels()
    if rounded:
        labels = [_round_label(text) for text in labels]
    axis.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1),
                borderaxespad=0, frameon=False)


def _round_label(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    return f"{value:.2g}" if value < 10 else f"{value:,.0f}"


def titled(what: str, title: str) -> str:
    return f"{title}: {what}" if title else what


def _pareto_front(x: np.ndarray, y: np.ndarray, x_lower_is_better: bool):
    """Points not beaten on both axes (lower y; lower or higher x), as a staircase."""
    order = np.argsort(x if x_lower_is_better else -x)
    front_x, front_y, best = [], [], np.inf
    for i in order:
        if y[i] < best:
            best = y[i]
            front_x.append(x[i])
            front_y.append(y[i])
    return front_x, front_y


def loss_curves(history: pd.DataFrame, path: Path, title: str = "",
                palette: dict | None = None) -> list[Path]:
    sns.set_theme(style="whitegrid")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    sns.lineplot(history, x="epoch", y="train_loss", hue="model", errorbar="sd", ax=axes[0],
                 legend=False, palette=palette)
    axes[0].set(yscale="log", ylabel="training loss (configured loss)", title="training")
    sns.lineplot(history, x="epoch", y="val_mse", hue="model", errorbar="sd", ax=axes[1],
                 palette=palette)
    axes[1].set(ylabel="validation MSE (sum/frame)", title="validation")
    for axis in axes:
        axis.xaxis.get_major_locator().set_params(integer=True)  # epochs are whole numbers
    legend_outside(axes[1])
    figure.suptitle(titled("training curves", title), fontsize=10)
    return save(figure, path)


def cost_bars(cost: pd.DataFrame, path: Path, title: str = "",
              palette: dict | None = None) -> list[Path]:
    columns = [("train_seq_s", "training (seq/s)"), ("infer_seq_s", "inference (seq/s)"),
               ("train_peak_mb", "training peak memory (MB)"),
               ("infer_peak_mb", "inference peak memory (MB)")]
    columns = [(k, label) for k, label in columns if k in cost]
    sns.set_theme(style="whitegrid")
    figure, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.8), squeeze=False)
    for axis, (key, label) in zip(axes[0], columns, strict=True):
        sns.barplot(cost, x="model", y=key, hue="model", ax=axis, legend=False, palette=palette)
        axis.set(xlabel="", ylabel="", title=label)
        positive = pd.to_numeric(cost[key], errors="coerce")
        positive = positive[positive > 0]
        if len(positive) > 1 and positive.max() > 100 * positive.min():
            axis.set_yscale("log")  # e.g. persistence, orders of magnitude faster than any model
        axis.tick_params(axis="x", rotation=45)
    figure.suptitle(titled("throughput and memory", title), fontsize=10)
    return save(figure, path)


def example_grid(arrays: dict[str, np.ndarray], title: str, path: Path) -> Path:
    """Rows: input, target and prediction of each example clip; columns: time."""
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
                    axis.imshow(_image(array[clip, t]), cmap="gray", vmin=0, vmax=255)
            line[0].set_title(f"{label} (clip {clip + 1})", fontsize=7, loc="left")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    savefig(figure, path, 100)
    plt.close(figure)
    return path


def example_gif(arrays: dict[str, np.ndarray], path: Path, scale: int = 2) -> Path:
    """Per frame, side by side: input then target | prediction (the first clip)."""
    inputs, target, prediction = arrays["input"][0], arrays["target"][0], arrays["prediction"][0]
    gap = np.full_like(_image(inputs[0]), 128)[:, :2]
    frames = [np.hstack([_image(f), gap, np.zeros_like(_image(f))]) for f in inputs]
    frames += [np.hstack([_image(t), gap, _image(p)]) for t, p in zip(target, prediction, strict=True)]
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
              for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=200, loop=0)
    return path


def _image(frame: np.ndarray) -> np.ndarray:
    """[C, H, W] uint8 -> 2-D (first channel) or RGB [H, W, 3]."""
    return frame[0] if frame.shape[0] != 3 else frame.transpose(1, 2, 0)
