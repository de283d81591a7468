"""Published Moving MNIST results as data (``published/mmnist.csv``: one row per method, source
and protocol, values copied from their sources), and the report's "Published results" block: on
a store tested on the standard test set (``mnist_test_seq.npy``, 10 -> 10 at 64x64) the
published rows of each model in the store beside its measured OpenSTL-convention metrics, each
side's convention and protocol named, with a paired plot; never mixed into the measured table,
never shown for other data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import plots

PUBLISHED = Path(__file__).parent / "published" / "mmnist.csv"
COLUMNS = ("method", "model", "epochs", "protocol", "params_m", "flops_g", "mse", "mae", "ssim",
           "psnr", "convention", "source")
NUMBERS = ("epochs", "params_m", "flops_g", "mse", "mae", "ssim", "psnr")
METRICS = ("mse", "mae", "ssim", "psnr")
# The data the published rows were measured on: the standard file, 10 -> 10, 64x64x1.
STANDARD = {"test_set": "mnist_test_seq.npy", "in_len": 10, "out_len": 10, "height": 64,
            "width": 64, "channels": 1}
CONVENTIONS = {
    "openstl": "OpenSTL's (openstl/core/metrics.py: MSE and MAE summed over a frame's pixels "
               "before clipping, SSIM on float frames, PSNR from the per-pixel MSE)",
    "unstated": "not stated by the source",
}
NOTE = ("Published values are as their sources state them (source column: repository, file, "
        "commit, line, or paper table), never measured here; \"ours\" are this store's test "
        "metrics in OpenSTL's convention (metrics.openstl, docs/metrics.md: \"openstl\" below) "
        "under this folder's preset, checkpoints selected on our validation split, while "
        "OpenSTL selects on the test set. Conventions: {conventions}.")


def published_table(path: Path = PUBLISHED) -> pd.DataFrame:
    """The published rows; numbers as floats (NaN where the source gives none)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if tuple(frame.columns) != COLUMNS:
        raise ValueError(f"{path}: columns {list(frame.columns)}; expected {list(COLUMNS)}")
    for column in NUMBERS:
        frame[column] = pd.to_numeric(frame[column].replace("", np.nan))
    return frame


def on_standard_test_set(records: list[dict]) -> bool:
    """Whether every record was tested on the standard Moving MNIST test set, 10 -> 10."""
    infos = [r.get("dataset_info") or {} for r in records]
    return bool(infos) and all(all(info.get(k) == v for k, v in STANDARD.items())
                               for info in infos)


def published_frame(acc: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """One row per (our configuration, published row of its model): ours (OpenSTL convention,
    preset and epochs) beside theirs. Empty off the standard test set or without a match."""
    if not on_standard_test_set(records):
        return pd.DataFrame()
    table, epochs = published_table(), _epochs(records)
    rows = []
    for _, ours in acc[acc["status"] == "ok"].iterrows():
        for _, theirs in table[table["model"] == ours["name"]].iterrows():
            row = {"model": ours["model"], "name": ours["name"],
                   "ours: protocol": epochs.get(ours["name"], "")}
            row.update({f"ours: {m}": ours.get(f"openstl_{m}", np.nan) for m in METRICS})
            row.update({"published": theirs["method"], "epochs": theirs["epochs"]})
            row.update({m: theirs[m] for m in METRICS})
            row.update({"their convention": theirs["convention"], "source": theirs["source"]})
            rows.append(row)
    return pd.DataFrame(rows)


def _epochs(records: list[dict]) -> dict[str, str]:
    """Model -> 'preset P, N epochs' of its records (the newest)."""
    shown = {}
    for record in records:
        epochs = ((record.get("config") or {}).get("train") or {}).get("epochs")
        shown[record["model"]] = (f"preset {record.get('preset')}, {epochs} "
                                  f"epoch{'' if epochs == 1 else 's'}")
    return shown


def published_section(frame: pd.DataFrame) -> list[str]:
    """The block's lines (table and note); empty for an empty frame."""
    if frame.empty:
        return []
    shown = frame.drop(columns=["name"]).copy()
    shown["epochs"] = shown["epochs"].map(lambda e: "" if pd.isna(e) else f"{e:g}")
    used = dict.fromkeys(["openstl", *frame["their convention"]])
    conventions = "; ".join(f"{name}: {CONVENTIONS.get(name, name)}" for name in used)
    return [shown.to_markdown(index=False, floatfmt="g"), "",
            NOTE.format(conventions=conventions)]


def write_published(out: Path, acc: pd.DataFrame, records: list[dict],
                    caption: str) -> tuple[list[str], Path | None]:
    """The block's lines and its figure (``published.png``, with ``published.csv``) written
    into ``out``; ([], None) where the records were not tested on the standard test set or no
    model of theirs has published results."""
    frame = published_frame(acc, records)
    if frame.empty:
        return [], None
    frame.drop(columns=["name"]).to_csv(out / "published.csv", index=False)
    return published_section(frame), published_plot(frame, out / "published", caption)[0]


@plots.theme()
def published_plot(frame: pd.DataFrame, path: Path, title: str = "") -> list[Path]:
    """Test MSE per model, the store's first at the top: ours (filled) and each published row
    (open: circle under 2,000 epochs, square 2,000 or more, diamond where the source states
    none), joined by a line, each labelled with its value; a log axis when they span more than
    ten-fold (a short run against converged ones)."""
    names = list(dict.fromkeys(frame["name"]))
    figure, axis = plots.plt.subplots(figsize=(8, 1.8 + 0.5 * len(names)))
    for y, name in enumerate(names):
        rows = frame[frame["name"] == name]
        ours = rows["ours: mse"].iloc[0]
        values = [v for v in [ours, *rows["mse"]] if np.isfinite(v)]
        axis.plot([min(values), max(values)], [y, y], color="0.8", zorder=1)
        for _, row in rows.iterrows():
            label, marker = _epochs_marker(row["epochs"])
            _point(axis, row["mse"], y, label, marker=marker, facecolors="none",
                   edgecolors="tab:orange", below=marker != "o")
        if np.isfinite(ours):
            _point(axis, ours, y, "ours (this store)", color="tab:blue")
    values = frame[["ours: mse", "mse"]].to_numpy(dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and values.max() > 10 * values.min():
        axis.set_xscale("log")
    axis.set(yticks=range(len(names)), yticklabels=names, ylim=(len(names) - 0.4, -0.6),
             xlabel="test MSE per frame (OpenSTL's convention; lower is better)")
    plots.legend_outside(axis)
    figure.suptitle(plots.titled("ours against published", title), fontsize=9)
    return plots.save(figure, path)


def _epochs_marker(epochs: float) -> tuple[str, str]:
    """A published row's legend entry and marker, by the epochs its source states."""
    if not np.isfinite(epochs):
        return "published, epochs not stated", "D"
    return ("published, 2,000 epochs", "s") if epochs >= 2000 else \
        ("published, fewer than 2,000 epochs", "o")


def _point(axis, value: float, y: float, label: str, below: bool = False, **style) -> None:
    """One marker with its value written beside it (above, or below for ``below``)."""
    axis.scatter(value, y, s=60, zorder=3, label=label, **style)
    axis.annotate(f"{value:.4g}", (value, y), textcoords="offset points", fontsize=7,
                  xytext=(0, -13 if below else 7), ha="center")
