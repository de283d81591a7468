"""How long the grid will take, from the throughput its cost profiling just measured."""
from __future__ import annotations

import statistics

from ..config import Preset
from ..runtime.clock import duration


def cell_estimate(cost: dict, preset: Preset, n_val: int, n_test: int) -> dict:
    """Seconds of training and of evaluation one cell should take on the profiled device.

    Training: every iteration of the preset at the measured training rate (which includes the
    reversed pass). Evaluation: the validation set after every epoch and the test set once, at
    the measured inference rate.
    """
    cfg = preset.train
    iterations = cfg.epochs * cfg.steps_per_epoch
    train_s = iterations * cfg.batch_size / cost["train_seq_s"] if cost.get("train_seq_s") else 0.0
    eval_clips = (cfg.epochs * n_val if cost.get("train_seq_s") else 0) + n_test
    eval_s = eval_clips / cost["infer_seq_s"] if cost.get("infer_seq_s") else 0.0
    return {"iterations": iterations if train_s else 0,
            "iteration_s": train_s / iterations if train_s else None,
            "train_s": train_s, "eval_s": eval_s, "total_s": train_s + eval_s}


def speed_ratio(record: dict) -> float | None:
    """A trained cell's measured seconds per iteration over its estimate's (from the profiled
    throughput): 1 when the profile was right, 8 when training ran 8 times slower; None when
    the cell did not train or had no estimate."""
    measured = (record.get("train") or {}).get("iteration_s")
    profiled = (record.get("estimate") or {}).get("iteration_s")
    return measured / profiled if measured and profiled else None


def refreshed_total(record: dict, ratio: float) -> float:
    """A cell's estimated seconds with its times scaled by ``ratio`` (measured / profiled);
    a time budget's training seconds are the budget's, and stay."""
    estimate = record["estimate"]
    fixed = (record.get("budget") or {}).get("kind") == "time"
    return (estimate["train_s"] if fixed else estimate["train_s"] * ratio) \
        + estimate["eval_s"] * ratio


def remaining_line(left: list[dict], ratios: dict[str, float]) -> str | None:
    """The grid's refreshed estimate after a cell, in one line: each cell still to run at its
    estimate scaled by its model's measured / profiled iteration time (``ratios``, from cells
    that trained), a model not trained yet by the median of those ratios. None when no cell is
    left or no ratio is known."""
    left = [r for r in left if r.get("estimate")]
    if not left or not ratios:
        return None
    typical = statistics.median(ratios.values())
    total = sum(refreshed_total(r, ratios.get(r["model"], typical)) for r in left)
    scaled = ", ".join(f"{name} {ratio:.2g}x" for name, ratio in ratios.items())
    return (f"   refreshed estimate: about {duration(total)} for the {len(left)} cell(s) left "
            f"(profiled times x measured/profiled iteration time: {scaled}; others "
            f"{typical:.2g}x)")


def estimate_lines(estimates: dict[str, dict], device_name: str,
                   conv_tflops: float | None = None) -> list[str]:
    """The table printed before training: per cell and in total. ``conv_tflops``: the device's
    measured 3x3-convolution rate, which sets how long a CPU run takes."""
    width = max(len(name) for name in estimates)
    rate = f", 3x3 convolutions at {conv_tflops * 1000:.0f} GFLOP/s" if conv_tflops else ""
    lines = [f"estimated time on {device_name}{rate}, from the measured throughput:"]
    for name, e in estimates.items():
        if e["iteration_s"]:
            train = f"{e['iterations']} iterations x {e['iteration_s']:.3g} s = {duration(e['train_s'])}"
        else:
            train = "no training"
        lines.append(f"  {name:<{width}}  {train} + {duration(e['eval_s'])} evaluation")
    total = sum(e["total_s"] for e in estimates.values())
    lines.append(f"  {'total':<{width}}  about {duration(total)}")
    return lines
