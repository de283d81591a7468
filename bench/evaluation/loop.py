"""Evaluation: autoregressive prediction from the input frames only, per-frame metrics."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..runtime import distributed
from ..runtime.precision import autocast
from . import openstl as openstl_convention
from .metrics import PerFrameMetrics

# Headline metrics kept per test clip (for the paired bootstrap over clips), each averaged over the
# clip's predicted frames, to 6 significant digits: compact in the store, and far finer than any
# difference a comparison can resolve.
PER_CLIP = ("mse", "mae", "ssim", "psnr")
PER_CLIP_DIGITS = 6


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    clips: Dataset,
    in_len: int,
    out_len: int,
    device: torch.device,
    batch_size: int = 32,
    amp: str = "none",
    keep_examples: int = 0,
    per_clip: bool = False,
    extra_metrics: dict | None = None,
    openstl: bool = True,
    scorers: dict | None = None,
) -> dict:
    """Per-frame metrics over ``clips``; the model sees only the first ``in_len`` frames.

    Predictions are clipped to [0, 1] before every metric, as the MoDeRNN authors do.
    Returns ``{"per_frame": {metric: [T values]}, "headline": {metric: mean}, "examples": ...}``
    where examples (uint8 input, target and prediction of the first clips) is present when
    ``keep_examples`` > 0, and per_clip (``{metric: [one value per clip, in clip order]}`` for
    the metrics of ``PER_CLIP``, each the mean over the clip's predicted frames, so the mean over
    clips is the headline value) when ``per_clip``. ``extra_metrics`` (``{name: fn(pred, target)
    -> [B, T]}``, e.g. LPIPS) add per-frame metrics to ``per_frame`` and ``headline``. With
    ``openstl`` (default), ``result["openstl"]`` holds the same predictions' metrics in OpenSTL's
    convention (bench.evaluation.openstl): ``headline``, ``per_frame`` and ``convention`` (in
    words, with its source); a non-finite value there (a raw prediction of inf) is None.

    Under torch.distributed each rank evaluates its own contiguous shard of ``clips`` and the
    metrics are all-reduced (the same numbers as one process); examples come from rank 0's
    shard, which starts at the first clip; per-clip values are gathered from every rank in clip
    order. Pass the unwrapped model, not a DDP wrapper.

    ``scorers`` (``{key: accumulator}``, bench.evaluation.domain.dataset_scorers: skill scores at
    thresholds, latitude-weighted errors) see the same predictions; ``result[key]`` is each one's
    ``result()`` (its counts or sums, all-reduced across ranks, and its scores).
    """
    scorers = dict(scorers or {})
    model.eval()
    metrics = PerFrameMetrics(clip=True, extra=extra_metrics)
    theirs = PerFrameMetrics(convention=openstl_convention.frame_metrics) if openstl else None
    examples, clip_values = [], []
    part = distributed.shard(clips)
    if len(part) == 0 and len(clips) > 0:  # more ranks than clips: add nothing, but take part
        empty = torch.zeros((0, out_len, *clips[0].shape[1:]), device=device)
        clip_values.append(_clip_means(metrics.update(empty, empty)))
        for accumulator in [theirs, *scorers.values()]:
            if accumulator is not None:
                accumulator.update(empty, empty)
    pinned = device.type == "cuda"  # pinned pages: the copies below do not make the host wait
    for frames in DataLoader(part, batch_size=batch_size, shuffle=False, pin_memory=pinned):
        frames = frames.to(device, non_blocking=True)
        with autocast(device, amp):
            future = model(frames[:, :in_len], in_len, out_len).future
        target = frames[:, in_len : in_len + out_len]
        values = metrics.update(future.float(), target)
        for accumulator in [theirs, *scorers.values()]:
            if accumulator is not None:
                accumulator.update(future.float(), target)
        if per_clip:
            clip_values.append(_clip_means(values))
        kept = sum(len(e[0]) for e in examples)
        if kept < keep_examples:
            n = keep_examples - kept
            examples.append(
                [_to_uint8(a[:n]) for a in (frames[:, :in_len], target, future.float())]
            )
    result = {
        "per_frame": {k: v.cpu().tolist() for k, v in metrics.compute().items()},
        "headline": metrics.headline(),
    }
    if theirs is not None:
        result["openstl"] = {
            "headline": {k: _finite_or_none(v) for k, v in theirs.headline().items()},
            "per_frame": {k: [_finite_or_none(x) for x in v.cpu().tolist()]
                          for k, v in theirs.compute().items()},
            "convention": openstl_convention.CONVENTION,
        }
    result.update({key: accumulator.result() for key, accumulator in scorers.items()})
    if per_clip:
        mine = torch.cat(clip_values) if clip_values else torch.zeros((0, len(PER_CLIP)))
        table = distributed.gather_shards(mine, len(clips)).cpu().tolist()
        result["per_clip"] = {k: [float(f"{row[i]:.{PER_CLIP_DIGITS}g}") for row in table]
                              for i, k in enumerate(PER_CLIP)}
    if examples:
        inputs, targets, preds = (np.concatenate(parts) for parts in zip(*examples, strict=False))
        result["examples"] = {"input": inputs, "target": targets, "prediction": preds}
    return result


def _clip_means(values: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[B, len(PER_CLIP)]``: each clip's metrics averaged over its predicted frames."""
    return torch.stack([values[k].mean(dim=1) for k in PER_CLIP], dim=1)


def _finite_or_none(value: float) -> float | None:
    """``value``, or None where it is not finite (records are strict JSON: no inf, no NaN)."""
    return value if math.isfinite(value) else None


def _to_uint8(frames: torch.Tensor) -> np.ndarray:
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
