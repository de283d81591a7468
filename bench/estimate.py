"""How long the grid will take, from the throughput its cost profiling just measured."""
from __future__ import annotations

from .config import Preset


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


def duration(seconds: float) -> str:
    """1h02m, 4m05s, 12s."""
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


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
