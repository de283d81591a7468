"""Figures (seaborn; PNG and PDF) and example frames (PNG grid and animated GIF).

Every figure is drawn inside :func:`theme`, with its colours from :func:`model_palette`: nothing
is read from or left in matplotlib's global settings, so a report draws the same bytes whatever
was drawn before it in the process."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from cycler import cycler  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import stats  # noqa: E402

from . import statistics  # noqa: E402

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


@contextmanager
def theme(style: str | None = "whitegrid"):
    """matplotlib's defaults, then seaborn's theme with ``style`` (None: the defaults alone),
    for the figures drawn inside (also usable as a decorator); the settings before are restored
    on exit. Unlike ``sns.set_theme``, which changes them for the rest of the process."""
    rc = {} if style is None else {**sns.plotting_context("notebook"), **sns.axes_style(style),
                                   "axes.prop_cycle": cycler(color=sns.color_palette("deep"))}
    with plt.style.context("default"), plt.rc_context(rc):
        yield


def model_palette(models) -> dict[str, tuple]:
    """One colour per row label (model), in the order they first appear (the grid's order), so
    that every plot of a report gives a model the same colour: matplotlib's ten default colours,
    evenly spaced hues beyond ten (never a colour twice). A named palette, never the current
    colour cycle, which an earlier figure may have changed."""
    names = list(dict.fromkeys(models))
    colours = sns.color_palette("tab10" if len(names) <= 10 else "husl", n_colors=len(names))
    return dict(zip(names, colours, strict=True))


PER_FRAME_METRICS = (("mse", "MSE (sum over pixels)"), ("ssim", "SSIM"))


@theme()
def per_frame(per_frame: pd.DataFrame, path: Path, title: str = "", palette: dict | None = None,
              acc: pd.DataFrame | None = None, reference: str | None = None) -> list[Path]:
    """MSE and SSIM per predicted frame, one column per metric, in up to three rows: the
    trained models alone (their axis scaled to them); each trained model's difference from
    ``reference`` with its interval (see :func:`frame_differences`); every model, the baselines
    without training (``acc["deterministic"]``) dotted. A row with nothing to draw is left out
    (no reference, no baseline, or baselines alone). Lines are means over seeds, with a ± 1 s.d.
    band for a model with 2 or more seeds; the title names only the bands drawn."""
    palette = palette or model_palette(per_frame["model"])
    untrained = untrained_models(acc)
    models = list(dict.fromkeys(per_frame["model"]))
    trained = [m for m in models if m not in untrained]
    reference, compared = compared_rows(acc, reference)
    differences = {metric: frame_differences(per_frame, reference, metric, untrained, compared)
                   for metric, _ in PER_FRAME_METRICS} if trained else {}
    rows = ([("trained", trained)] if trained else []) \
        + ([("delta", trained)] if any(not d.empty for d in differences.values()) else []) \
        + ([("all", models)] if untrained else [])
    figure, axes = plt.subplots(len(rows), 2, figsize=(11, 0.6 + 3.4 * len(rows)), squeeze=False)
    drawn = set()
    for line, (kind, shown) in zip(axes, rows, strict=True):
        for axis, (metric, label) in zip(line, PER_FRAME_METRICS, strict=True):
            if kind == "delta":
                drawn |= _draw_differences(axis, differences[metric], reference, palette)
                axis.set_title(f"Δ {label} vs {reference}: trained models", fontsize=10)
            else:
                summary = seed_summary(per_frame[per_frame["model"].isin(shown)], metric)
                drawn |= _draw_means(axis, summary, palette, untrained)
                axis.set_title(f"{label}: " + ("trained models" if kind == "trained" else
                                               "every model, dotted: no training"), fontsize=10)
            axis.set(xlabel="predicted frame", ylabel=f"Δ {label}" if kind == "delta" else label)
            axis.xaxis.get_major_locator().set_params(integer=True)  # frames are whole numbers
    legend_outside(axes[0][1], axes.flat)
    figure.suptitle(titled("accuracy per predicted frame", title) + "\n" + _bands_note(drawn),
                    fontsize=10)
    return save(figure, path)


def untrained_models(acc: pd.DataFrame | None) -> set[str]:
    """The row labels of models without training (no trainable parameters: persistence, blank,
    mean), from the accuracy frame's ``deterministic`` column; none without a frame."""
    if acc is None or "deterministic" not in acc:
        return set()
    return set(acc.loc[acc["deterministic"].astype(bool), "model"])


def compared_rows(acc: pd.DataFrame | None, reference: str | None
                  ) -> tuple[str | None, set[str] | None]:
    """The reference row whose differences are drawn and the rows compared with it (the
    accuracy frame's ``compared_with``: rows of the same protocol). A folder of several
    protocols has a reference row per protocol: the one most rows are compared with is drawn.
    Without that column every row is compared with ``reference`` (None: all)."""
    if acc is None or "compared_with" not in acc or reference is None:
        return reference, None
    counts = acc.loc[acc["compared_with"] != "", "compared_with"].value_counts()
    label = counts.index[0] if len(counts) else reference
    return label, set(acc.loc[acc["compared_with"] == label, "model"])


def seed_summary(per_frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per row label and frame: ``mean`` of ``metric`` over seeds, ``sd`` (NaN for one seed)
    and the number of ``seeds``, models in the order they first appear."""
    grouped = per_frame.groupby(["model", "frame"], sort=False)[metric]
    return grouped.agg(mean="mean", sd="std", seeds="count").reset_index()


def frame_differences(per_frame: pd.DataFrame, reference: str | None, metric: str,
                      untrained: set[str] = frozenset(),
                      compared: set[str] | None = None) -> pd.DataFrame:
    """Per trained row label other than ``reference`` and per frame: ``delta``, the mean over
    paired seeds of its ``metric`` minus the reference's, and ``low``/``high``, a 95% t-interval
    of that mean over the ``pairs`` (NaN for one pair). Seeds pair as in the table's bootstrap
    (statistics.paired_clip_differences, here with per-frame values): seed s with seed s, and a
    reference without training with every seed. The records hold per-clip values averaged over
    frames, not per frame, so the interval is over seeds, not clips. Empty without a reference
    in ``per_frame``. ``compared``: the rows of the reference's protocol (None: every row)."""
    runs = {model: {seed: rows.sort_values("frame")[metric].to_numpy(dtype=float)
                    for seed, rows in group.groupby("seed")}
            for model, group in per_frame.groupby("model", sort=False)}
    columns = ["model", "frame", "delta", "low", "high", "pairs"]
    if reference not in runs:
        return pd.DataFrame(columns=columns)
    frames = np.sort(per_frame["frame"].unique())
    rows = []
    for model, seeds in runs.items():
        if model == reference or model in untrained or (compared is not None
                                                         and model not in compared):
            continue
        pairs = [d for d in (statistics.paired_clip_differences(
            {seed: values}, runs[reference], False, reference in untrained)[0]
            for seed, values in seeds.items()) if d is not None]
        if pairs:
            delta, half = _mean_and_half_width(np.array(pairs))
            rows += [{"model": model, "frame": t, "delta": d, "low": d - h, "high": d + h,
                      "pairs": len(pairs)} for t, d, h in zip(frames, delta, half, strict=True)]
    return pd.DataFrame(rows, columns=columns)


def _mean_and_half_width(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means of ``pairs`` [pairs, frames] and the half-width of their t-interval at the
    bootstrap's confidence (NaN for one pair)."""
    n = len(pairs)
    if n < 2:
        return pairs.mean(axis=0), np.full(pairs.shape[1], np.nan)
    t = stats.t.ppf((1 + statistics.CONFIDENCE) / 2, n - 1)
    return pairs.mean(axis=0), t * pairs.std(axis=0, ddof=1) / np.sqrt(n)


def _draw_means(axis, summary: pd.DataFrame, palette: dict, dotted: set[str]) -> set[str]:
    """A line per model (its mean over seeds), dotted for ``dotted``, and a ± 1 s.d. band where
    it ran several seeds. Returns {"sd"} when a band was drawn, else an empty set."""
    drawn = set()
    for model, rows in summary.groupby("model", sort=False):
        axis.plot(rows["frame"], rows["mean"], marker="o", markersize=4, color=palette[model],
                  linestyle=":" if model in dotted else "-", label=model)
        if rows["seeds"].min() > 1:
            axis.fill_between(rows["frame"], rows["mean"] - rows["sd"], rows["mean"] + rows["sd"],
                              color=palette[model], alpha=0.2, linewidth=0)
            drawn.add("sd")
    return drawn


def _draw_differences(axis, differences: pd.DataFrame, reference: str, palette: dict) -> set[str]:
    """A line at 0 for the reference, a line per model with its interval as a band (2 or more
    seed pairs). Returns what was drawn: "delta", ("ci", pairs) per interval's seed pairs,
    "one pair" for a line without one."""
    axis.axhline(0, color=palette.get(reference, "0.3"), linewidth=1.5,
                 label=f"{reference} (reference)")
    drawn = {"delta"}
    for model, rows in differences.groupby("model", sort=False):
        axis.plot(rows["frame"], rows["delta"], marker="o", markersize=4, color=palette[model],
                  label=model)
        if rows["pairs"].iloc[0] > 1:
            axis.fill_between(rows["frame"], rows["low"], rows["high"], color=palette[model],
                              alpha=0.2, linewidth=0)
        drawn.add(("ci", int(rows["pairs"].iloc[0])) if rows["pairs"].iloc[0] > 1 else "one pair")
    return drawn


def _bands_note(drawn: set[str]) -> str:
    """What the lines and bands of the per-frame figure are, for only what was drawn."""
    parts = ["lines: mean over seeds" + ("; bands: ± 1 s.d. over seeds" if "sd" in drawn
                                         else " (one seed per model: no bands)")]
    pairs = sorted(entry[1] for entry in drawn if isinstance(entry, tuple))
    if pairs:
        counts = " or ".join(str(n) for n in dict.fromkeys(pairs))
        parts.append(f"Δ bands: {statistics.CONFIDENCE:.0%} t-interval over {counts} paired seeds")
    if "one pair" in drawn:
        parts.append("Δ of one seed: no interval")
    return "; ".join(parts)


@theme()
def pareto(acc: pd.DataFrame, cost: pd.DataFrame, path: Path, title: str = "",
           palette: dict | None = None) -> list[Path]:
    """Test MSE against compute and against training throughput, with the Pareto front.

    Trained models are points with error bars: ± 1 s.d. over seeds where a model ran several,
    else the 95% bootstrap interval of its mean over test clips (none without per-clip values).
    Models without parameters (persistence, blank, mean, optical_flow) have no cost to place them
    by: they are horizontal reference lines. The MSE axis spans the trained models' points and
    error bars, so that models 2% apart are told apart; a baseline outside it is named at the
    axis' edge with its value instead of stretching the axis (persistence is often twice the
    trained models)."""
    frame = acc[acc["status"] == "ok"].merge(cost, on="model")
    frame["params (M)"] = frame["params"] / 1e6
    trivial = frame[frame["params"].fillna(0) == 0] if "params" in frame else frame.iloc[:0]
    trained = frame.drop(trivial.index)
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    panels = ((axes[0], "gmacs_fvcore", "GMACs per test rollout (fvcore)", True),
              (axes[1], "train_seq_s", "training throughput (sequences/s)", False))
    limits = _mse_limits(trained, trivial)
    bars, dotted = set(), False
    for axis, key, label, lower in panels:
        points = trained.dropna(subset=[key]) if key in trained else trained.iloc[:0]
        points = points[points[key] > 0]
        if points.empty and trivial.empty:
            axis.set_visible(False)
            continue
        if not points.empty:
            bars |= _draw_points(axis, points, key, lower, palette, legend=axis is axes[0])
        dotted |= _draw_baselines(axis, trivial, limits)
        axis.set(xlabel=label, ylabel="test MSE (sum/frame)", ylim=limits)
    if axes[0].get_legend():
        legend_outside(axes[0], rounded=True)
    notes = ["marker size: parameters"] if not trained.empty else []
    notes += [_error_bar_note(bars)] if bars else []
    notes += ["dotted: baselines without training"] if dotted else []
    figure.suptitle(titled("accuracy against cost", title) + "\n" + "; ".join(notes), fontsize=9)
    return save(figure, path)


def _draw_points(axis, points: pd.DataFrame, key: str, lower: bool, palette: dict | None,
                 legend: bool) -> set[str]:
    """The trained models' markers, names, error bars and Pareto front on one panel; returns
    the kinds of error bar drawn ({"sd", "ci"})."""
    low, high, kinds = _error_bars(points)
    axis.errorbar(points[key], points["mse"], yerr=[low, high], fmt="none", ecolor="0.4",
                  elinewidth=1, capsize=3, zorder=1)
    sns.scatterplot(points, x=key, y="mse", hue="model", size="params (M)", palette=palette,
                    sizes=(40, 400), ax=axis, legend=legend, zorder=2)
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
    return kinds


def _mse_limits(trained: pd.DataFrame, trivial: pd.DataFrame) -> tuple[float, float]:
    """The MSE axis: the trained models' points and error bars (the baselines' values when
    nothing trained), with a margin of 15% of their span (5% of the value for one value), 25%
    above for the names of points and of baselines beyond the axis."""
    if trained.empty:
        low = high = trivial["mse"].to_numpy(dtype=float)
    else:
        below, above, _ = _error_bars(trained)
        low, high = trained["mse"].to_numpy() - below, trained["mse"].to_numpy() + above
    if len(low) == 0:
        return 0.0, 1.0
    bottom, top = float(np.min(low)), float(np.max(high))
    pad = 0.15 * (top - bottom) if top > bottom else 0.05 * max(abs(top), 1e-12)
    return bottom - pad, top + pad * 25 / 15


def _draw_baselines(axis, trivial: pd.DataFrame, limits: tuple[float, float]) -> bool:
    """A dotted line per baseline without training inside ``limits``; those outside named, with
    their value, at the edge they lie beyond. Returns whether a line was drawn."""
    outside = {"above": [], "below": []}
    for _, row in trivial.iterrows():
        if limits[0] <= row["mse"] <= limits[1]:
            axis.axhline(row["mse"], color="0.55", linestyle=":", linewidth=1.2, zorder=0)
            axis.annotate(f"{row['model']} (no training)", (0.01, row["mse"]),
                          xycoords=("axes fraction", "data"), textcoords="offset points",
                          xytext=(0, 3), fontsize=8, color="0.35")
        else:
            outside["above" if row["mse"] > limits[1] else "below"].append(
                f"{row['model']} {row['mse']:.2f}")
    for side, names in outside.items():
        if names:
            axis.annotate(f"{side} the axis, no training: {', '.join(names)}",
                          (0.01, 0.98 if side == "above" else 0.02), xycoords="axes fraction",
                          va="top" if side == "above" else "bottom", fontsize=8, color="0.35")
    return any(limits[0] <= mse <= limits[1] for mse in trivial["mse"])


def _error_bars(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, set[str]]:
    """Below and above each point: ± s.d. over seeds (2+ seeds), else the bootstrap interval
    (0 without per-clip values); and which of the two ({"sd", "ci"}) some point has."""
    std = points["mse_std"].to_numpy(dtype=float)
    ci_low = (points["mse"] - points["mse_ci_low"]).to_numpy(dtype=float)
    ci_high = (points["mse_ci_high"] - points["mse"]).to_numpy(dtype=float)
    low, high = np.where(np.isnan(std), ci_low, std), np.where(np.isnan(std), ci_high, std)
    kinds = ({"sd"} if (~np.isnan(std)).any() else set()) \
        | ({"ci"} if (np.isnan(std) & ~np.isnan(ci_low)).any() else set())
    return np.nan_to_num(low), np.nan_to_num(high), kinds


def _error_bar_note(kinds: set[str]) -> str:
    """The error bars drawn, named: s.d. over seeds, the bootstrap interval, or both."""
    sd, ci = "± 1 s.d. over seeds", f"the {statistics.CONFIDENCE:.0%} bootstrap interval over test clips"
    if kinds == {"sd"}:
        return f"error bars: {sd}"
    if kinds == {"ci"}:
        return f"error bars: {ci} (one seed)"
    return f"error bars: {sd}, or {ci} for one seed"


def legend_outside(axis, sources=None, rounded: bool = False) -> None:
    """The legend to the right of ``axis``, never over data; numbers (sizes) rounded. Its
    entries: those of ``sources`` (axes; default ``axis`` alone), each label once."""
    entries = {}
    for source in sources if sources is not None else [axis]:
        for handle, label in zip(*source.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    handles, labels = list(entries.values()), list(entries)
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


@theme()
def loss_curves(history: pd.DataFrame, path: Path, title: str = "",
                palette: dict | None = None) -> list[Path]:
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


@theme()
def cost_bars(cost: pd.DataFrame, path: Path, title: str = "",
              palette: dict | None = None) -> list[Path]:
    columns = [("train_seq_s", "training (seq/s)"), ("infer_seq_s", "inference (seq/s)"),
               ("train_peak_mb", "training peak memory (MB)"),
               ("infer_peak_mb", "inference peak memory (MB)")]
    columns = [(k, label) for k, label in columns if k in cost]
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


@theme(None)
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
