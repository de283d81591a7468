"""The "Cross-dataset evaluation" table: records of ``run_bench.py evaluate``, kept out of the
training tables and plots (whose records are mode "train" only)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..store import one_line
from .aggregate import ACCURACY
from .tables import DIGITS, mean_std, text_cell

TITLE = "Cross-dataset evaluation"
NOTE = ("Each row is one trained cell's checkpoint (the one best on its own validation set, as its "
        "training record was tested) run on another dataset or preset's test clips by "
        "`run_bench.py evaluate`; metrics as above, one seed per row. 'own test MSE': the same "
        "checkpoint's test MSE on the data it was trained on, from its training record.")


def latest_evaluations(records: list[dict]) -> list[dict]:
    """The newest evaluate record of each (model, seed, training cell, test data, frames)."""
    newest: dict[tuple, dict] = {}
    for r in records:
        if r["mode"] == "evaluate":
            source, target = r["trained_on"], r["evaluated_on"]
            newest[(r["model"], r["seed"], source["dataset"], source["preset"],
                    source["config_hash"], target["dataset"], target["preset"], target["in_len"],
                    target["out_len"])] = r
    return list(newest.values())


def cross_eval_frame(records: list[dict]) -> pd.DataFrame:
    """One row per evaluation: both sides and every headline metric, numbers as numbers."""
    rows = []
    for r in records:
        source, target = r["trained_on"], r["evaluated_on"]
        ok = r["status"] == "ok" and r.get("metrics")
        headline = r["metrics"]["headline"] if ok else {}
        rows.append({
            "model": r["model"], "seed": r["seed"],
            "trained_on": f"{source['dataset']} ({source['preset']})",
            "evaluated_on": f"{target['dataset']} ({target['preset']}, {target['in_len']} -> "
                            f"{target['out_len']})",
            **{key: headline.get(key, np.nan) for key in ACCURACY},
            "own_test_mse": (source.get("test_headline") or {}).get("mse", np.nan),
            "status": "ok" if ok else f"failed: {one_line(r.get('error'))}",
            "trained_config_hash": source["config_hash"],
            "checkpoint": _beside_store(source),
        })
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["trained_on", "evaluated_on", "model", "seed"], kind="stable",
                             ignore_index=True)


def cross_eval_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Display table: model, seed, trained on, evaluated on, the metrics, own test MSE."""
    out = frame[["model", "seed"]].copy()
    out["model"] = out["model"].map(lambda m: text_cell(m, False))
    out["trained on"], out["evaluated on"] = frame["trained_on"], frame["evaluated_on"]
    for key, (label, _) in ACCURACY.items():
        out[label] = [mean_std(v, np.nan, DIGITS[key], False) for v in frame[key]]
    out["own test MSE"] = [mean_std(v, np.nan, DIGITS["mse"], False) for v in frame["own_test_mse"]]
    if (frame["status"] != "ok").any():
        out["status"] = frame["status"].map(lambda s: text_cell(s, False))
    return out


def cross_eval_markdown(records: list[dict]) -> str:
    """The display table as Markdown, numbers as formatted (not re-parsed by tabulate)."""
    return _markdown(cross_eval_table(cross_eval_frame(records)))


def _markdown(table: pd.DataFrame) -> str:
    text = {"model", "trained on", "evaluated on", "status"}
    return table.to_markdown(index=False, disable_numparse=True, colalign=[
        "left" if column in text else "right" for column in table.columns])


def cross_eval_section(folder, records: list[dict]) -> tuple[str, list[str]]:
    """Writes cross_eval.csv; returns the Markdown table and the index section's lines (empty
    without evaluate records)."""
    if not records:
        return "", []
    frame = cross_eval_frame(records)
    frame.to_csv(folder / "cross_eval.csv", index=False)
    table = _markdown(cross_eval_table(frame))
    return table, [table, "", NOTE, "", "Table: [cross_eval.csv](cross_eval.csv)."]


def _beside_store(source: dict) -> str:
    """The checkpoint's path from its training store's folder (no absolute path in a report)."""
    path = (source.get("checkpoint") or {}).get("path")
    if not path:
        return ""
    try:
        return str(Path(path).relative_to(Path(source["store"]).parent))
    except ValueError:
        return Path(path).name
