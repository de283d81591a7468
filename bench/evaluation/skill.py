"""Skill scores at intensity thresholds, as nowcasting papers report them (CSI, POD, SUCR, BIAS, HSS).

Definitions (Earthformer ``src/earthformer/metrics/skill_scores.py`` and the SEVIR challenge's
``src/evaluate_models.py``; docs/metrics.md):

- Both prediction and target are taken back to the data's units (``x = x01 * scale + offset``,
  the dataset's normalisation; the prediction clipped to [0, 1] first, as for every metric) and
  binarised with ``value >= threshold`` (Earthformer's rule; pysteps uses ``>``).
- The comparison allows ``ROUNDING`` (1e-6) of the data's range below the threshold: frames
  reach the metrics as float32 in [0, 1], and ``float32(16 / 255) * 255`` may come back a hair
  under 16, which would count a stored 16 as below 16. Any real difference is far larger.
- Per threshold: hits H (both at or above), misses M (target only), false alarms F (prediction
  only), correct negatives R (neither), summed over every test pixel, channel and clip (and over
  the lead times for the overall scores: Earthformer's default aggregation).
- CSI = H / (H + M + F), POD = H / (H + M), SUCR = H / (H + F) = 1 - FAR, BIAS = (H + F) / (H + M),
  HSS = 2 (H R - M F) / ((H + M)(M + R) + (H + F)(F + R)) (pysteps'
  ``verification/detcatscores.py``; Earthformer's file has no HSS). A score whose denominator is
  0 is undefined (None in records, never a made-up 0; Earthformer's eps makes it 0).
- The means over thresholds (``csi_m`` is CSI-M) average the thresholds the TARGET reaches
  (H + M > 0): which thresholds count depends on the truth only, so every model of a table
  averages the same ones. ``thresholds_scored`` names them. A mean is None when its score is
  undefined at one of those thresholds (SUCR of a model that predicts no event there).
- Pooled CSI: prediction and target max-pooled in non-overlapping ``p x p`` blocks (p = 4, 16;
  a partial block at the edge is pooled too, as DiffCast's ``utils/metrics.py`` ``max_pool``
  zero-pads; PreDiff's floor-mode pooling drops it, the same on SEVIR's 384 and 128) before
  binarising, as PreDiff and DiffCast report CSI-pool4 / CSI-pool16. A pool larger than the
  frame is left out.

The counts themselves are kept (``counts``: per pool, per lead time, per threshold) so that
shards, ranks and seeds combine exactly: add the counts, then compute the scores
(:func:`add_counts`, :func:`scores`). OpenSTL's SEVIR metric code overwrote its threshold variable
inside the loop and swapped prediction and target (OpenSTL issue #173); tests/test_skill.py
holds a case that either mistake changes.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

RULE = ">="
POOLS = (1, 4, 16)
COUNTS = ("hits", "misses", "false_alarms", "correct_negatives")
SCORES = ("csi", "pod", "sucr", "bias", "hss")
ROUNDING = 1e-6  # of the data's range: the float32 round-off of x01 = (x - offset) / scale


def to_units(frames: torch.Tensor, scale, offset) -> torch.Tensor:
    """``frames`` ``[B, T, C, H, W]`` in [0, 1] -> float64 values in the data's units (``scale``
    and ``offset``: one value, or one per channel)."""
    x = frames.to(torch.float32 if frames.device.type == "mps" else torch.float64)
    s = torch.as_tensor(scale, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    o = torch.as_tensor(offset, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
    return x * s + o


def contingency(pred: torch.Tensor, target: torch.Tensor, thresholds, pool: int = 1,
                tolerance: float = 0.0) -> torch.Tensor:
    """Counts ``[T, K, 4]`` (int64: hits, misses, false alarms, correct negatives per lead time and
    threshold) of ``pred`` and ``target`` ``[B, T, C, H, W]`` in the data's units, summed over
    clips, channels and pixels, after max-pooling by ``pool`` when it is > 1; a value counts as
    reaching a threshold when ``value >= threshold - tolerance``."""
    if pred.shape != target.shape or pred.dim() != 5:
        raise ValueError(f"pred and target must both be [B, T, C, H, W]; got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    if pool > 1:
        pred, target = _max_pool(pred, pool), _max_pool(target, pool)
    out = []
    for threshold in thresholds:  # one threshold at a time: a [B, T, C, H, W, K] mask is large
        p, y = pred >= threshold - tolerance, target >= threshold - tolerance
        dims = tuple(d for d in range(p.dim()) if d != 1)  # all but the lead time
        out.append(torch.stack([(p & y).sum(dims), (~p & y).sum(dims), (p & ~y).sum(dims),
                                (~p & ~y).sum(dims)], dim=-1))
    return torch.stack(out, dim=1)


def _max_pool(x: torch.Tensor, pool: int) -> torch.Tensor:
    """``[B, T, C, H, W]`` max-pooled by ``pool`` (ceil mode) as ``[B, T, C, pixels]``; an empty
    batch (a rank without test clips) stays empty."""
    b, t, c, h, w = x.shape
    pooled = F.max_pool2d(x.reshape(b * t * c, 1, h, w), pool, pool, ceil_mode=True)
    return pooled.reshape(b, t, c, pooled.shape[-2] * pooled.shape[-1])


class ThresholdCounts:
    """Accumulates :func:`contingency` over batches of [0, 1] frames, for each pool of ``pools``
    that fits the frames; ``result()`` is the record's ``skill`` entry (counts and scores)."""

    def __init__(self, thresholds, scale, offset, unit: str, source: str, pools=POOLS):
        thresholds = [float(v) for v in thresholds]
        if not thresholds or thresholds != sorted(set(thresholds)):
            raise ValueError(f"thresholds must be distinct and increasing; got {thresholds}")
        self.thresholds, self.scale, self.offset = thresholds, scale, offset
        self.unit, self.source, self.pools = unit, source, tuple(pools)
        self.tolerance = ROUNDING * max(abs(float(v)) for v in torch.as_tensor(scale).reshape(-1))
        self._counts: dict[int, torch.Tensor] = {}

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred = to_units(pred.clamp(0.0, 1.0), self.scale, self.offset)
        target = to_units(target, self.scale, self.offset)
        for pool in self.pools:
            if pool > min(pred.shape[-2:]):
                continue
            counts = contingency(pred, target, self.thresholds, pool, self.tolerance)
            self._counts[pool] = self._counts[pool] + counts if pool in self._counts else counts

    def result(self) -> dict:
        if not self._counts:
            raise RuntimeError("ThresholdCounts.result() called before any update()")
        counts = {}
        for pool, tensor in sorted(self._counts.items()):
            tensor = tensor.clone()
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            counts[str(pool)] = {name: tensor[..., i].cpu().tolist() for i, name in enumerate(COUNTS)}
        entry = {"rule": f"value {RULE} threshold (less {self.tolerance:.3g} for float32 "
                         "round-off)", "thresholds": self.thresholds,
                 "unit": self.unit, "source": self.source, "counts": counts}
        return {**entry, **scores(entry)}


def add_counts(first: dict, second: dict) -> dict:
    """Two ``skill`` entries' counts added (same thresholds, pools and lead times), with the
    scores of the sum: how shards of a test set, or two evaluations, combine exactly."""
    differ = [key for key in ("thresholds", "unit", "rule") if first.get(key) != second.get(key)]
    if first["counts"].keys() != second["counts"].keys():
        differ.append("pools")
    if differ:
        raise ValueError(f"skill entries differ in {', '.join(differ)}; they cannot be added")
    counts = {pool: {name: [[a + b for a, b in zip(x, y, strict=True)]
                            for x, y in zip(table[name], second["counts"][pool][name], strict=True)]
                     for name in COUNTS}
              for pool, table in first["counts"].items()}
    entry = {**first, "counts": counts}
    return {**entry, **scores(entry)}


def scores(entry: dict) -> dict:
    """The scores of a ``skill`` entry's counts: ``per_threshold`` (each score over all lead
    times; CSI also pooled), ``per_lead`` (CSI per lead time and threshold, the means over
    thresholds per lead time), ``headline`` (means over the thresholds the target reaches) and
    ``thresholds_scored``."""
    full = _tensor(entry["counts"]["1"])  # [T, K, 4]
    overall = _score_table(full.sum(0))
    reached = full.sum(0)[:, 0] + full.sum(0)[:, 1] > 0
    per_lead = [_score_table(full[t]) for t in range(full.shape[0])]
    headline = {f"{name}_m": _mean(overall[name], reached) for name in SCORES}
    per_threshold = {name: _listed(overall[name]) for name in SCORES}
    lead = {"csi": [_listed(s["csi"]) for s in per_lead],
            **{f"{name}_m": [_mean(s[name], full[t, :, 0] + full[t, :, 1] > 0)
                             for t, s in enumerate(per_lead)] for name in SCORES}}
    for pool in (p for p in entry["counts"] if p != "1"):
        pooled = _tensor(entry["counts"][pool])
        csi = _score_table(pooled.sum(0))["csi"]
        per_threshold[f"csi_pool{pool}"] = _listed(csi)
        headline[f"csi_m_pool{pool}"] = _mean(csi, reached)
        lead[f"csi_m_pool{pool}"] = [_mean(_score_table(pooled[t])["csi"], full[t, :, 0]
                                           + full[t, :, 1] > 0) for t in range(pooled.shape[0])]
    return {"headline": headline, "per_threshold": per_threshold, "per_lead": lead,
            "thresholds_scored": [v for v, r in zip(entry["thresholds"], reached.tolist(),
                                                     strict=True) if r]}


def _tensor(table: dict) -> torch.Tensor:
    return torch.stack([torch.tensor(table[name], dtype=torch.float64) for name in COUNTS], dim=-1)


def _score_table(c: torch.Tensor) -> dict[str, torch.Tensor]:
    """The five scores of counts ``[..., 4]``; NaN where a denominator is 0."""
    h, m, f, r = c.unbind(-1)
    with torch.no_grad():
        return {"csi": _ratio(h, h + m + f), "pod": _ratio(h, h + m), "sucr": _ratio(h, h + f),
                "bias": _ratio(h + f, h + m),
                "hss": _ratio(2 * (h * r - m * f), (h + m) * (m + r) + (h + f) * (f + r))}


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.full_like(num, float("nan")))


def _listed(values: torch.Tensor) -> list:
    return [None if v != v else float(v) for v in values.tolist()]


def _mean(values: torch.Tensor, keep: torch.Tensor) -> float | None:
    """The mean of ``values`` over the thresholds ``keep`` marks; None if none is marked or the
    score is undefined at one of them (e.g. SUCR where a model predicts no event at all)."""
    kept = values[keep]
    return float(kept.mean()) if len(kept) and not kept.isnan().any() else None
