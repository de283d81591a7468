"""Latitude-weighted scores of gridded weather fields (WeatherBench: RMSE and ACC, in the data's units).

Definitions (Rasp et al., WeatherBench, JAMES 2020, section 3.3 and eqs. 1-3; docs/metrics.md):

- Weights ``L(j) = cos(lat_j) / mean_j cos(lat_j)``: the cosine of each row's latitude,
  normalised to mean 1 over the latitudes.
- RMSE: for each forecast (one clip at one lead time) ``sqrt(mean_{j,k} L(j) (f - t)^2)`` over
  the grid (one variable: C = 1), then averaged over forecasts: per lead time over the test
  clips, and the headline over every clip and lead time (the mean of the per-lead values).
- ACC: anomalies against a climatology ``C`` (``f' = f - C``, ``t' = t - C``; here the mean of
  the TRAINING years per grid point, given by the dataset), then per lead time
  ``sum L f' t' / sqrt(sum L f'^2 * sum L t'^2)`` with the sums over clips and grid points;
  the headline is the mean over lead times.
- Both in the data's units (``x = x01 * scale + offset``; e.g. Kelvin), the prediction clipped to
  [0, 1] first as for every metric.

The sums are kept (``sums``) so that shards and ranks combine exactly: add them, then divide.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist

from .skill import to_units

SUMS = ("rmse_sum", "forecasts", "anomaly_product", "forecast_anomaly_sq", "target_anomaly_sq")


def latitude_weights(latitudes) -> torch.Tensor:
    """cos(latitude) normalised to mean 1, float64 ``[H]`` (latitudes in degrees)."""
    lat = torch.as_tensor(latitudes, dtype=torch.float64)
    if lat.dim() != 1 or not len(lat) or (lat.abs() > 90).any():
        raise ValueError(f"latitudes must be one row of degrees in [-90, 90]; got {latitudes!r}")
    w = torch.cos(torch.deg2rad(lat))
    if w.mean() < 1e-9:
        raise ValueError(f"latitudes {latitudes!r} have no weight (all at the poles)")
    return w / w.mean()


class LatitudeWeighted:
    """Accumulates latitude-weighted RMSE and ACC over batches of [0, 1] frames ``[B, T, C, H,
    W]``; ``result()`` is the record's ``latitude_weighted`` entry."""

    def __init__(self, latitudes, climatology, scale, offset, unit: str, climatology_rule: str,
                 source: str):
        self.weights = latitude_weights(latitudes)
        self.climatology = torch.as_tensor(climatology, dtype=torch.float64)
        if self.climatology.dim() != 3 or self.climatology.shape[1] != len(self.weights):
            raise ValueError(f"climatology must be [C, H, W] with H = {len(self.weights)} "
                             f"latitudes; got {tuple(self.climatology.shape)}")
        if self.climatology.shape[0] != 1:  # WeatherBench scores each variable on its own
            raise ValueError(f"latitude-weighted scores take one variable (C = 1); got C = "
                             f"{self.climatology.shape[0]}")
        self.scale, self.offset, self.unit = scale, offset, unit
        self.climatology_rule, self.source = climatology_rule, source
        self._sums: torch.Tensor | None = None  # [len(SUMS), T]

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.shape[-3:] != self.climatology.shape:
            raise ValueError(f"frames of {tuple(pred.shape[-3:])} do not match the climatology's "
                             f"{tuple(self.climatology.shape)}")
        f = to_units(pred.clamp(0.0, 1.0), self.scale, self.offset)
        t = to_units(target, self.scale, self.offset)
        w = self.weights.to(f.device, f.dtype).reshape(-1, 1)
        clim = self.climatology.to(f.device, f.dtype)
        rmse = ((f - t).square() * w).mean(dim=(2, 3, 4)).sqrt()  # [B, T]: one per forecast
        fa, ta = f - clim, t - clim
        dims = (0, 2, 3, 4)
        sums = torch.stack([rmse.sum(0), rmse.new_full(rmse.shape[1:], rmse.shape[0]),  # any B
                            (w * fa * ta).sum(dims), (w * fa * fa).sum(dims),
                            (w * ta * ta).sum(dims)])
        if self._sums is not None and self._sums.shape != sums.shape:
            raise ValueError(f"horizon changed: {sums.shape[1]} frames, earlier batches "
                             f"{self._sums.shape[1]}")
        self._sums = sums if self._sums is None else self._sums + sums

    def result(self) -> dict:
        if self._sums is None:
            raise RuntimeError("LatitudeWeighted.result() called before any update()")
        sums = self._sums.clone()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(sums, op=dist.ReduceOp.SUM)
        entry = {"unit": self.unit, "climatology": self.climatology_rule, "source": self.source,
                 "sums": {name: sums[i].cpu().tolist() for i, name in enumerate(SUMS)}}
        return {**entry, **weighted_scores(entry["sums"])}


def weighted_scores(sums: dict) -> dict:
    """``per_lead`` RMSE and ACC and their ``headline`` means from a ``sums`` entry."""
    s = {name: torch.tensor(sums[name], dtype=torch.float64) for name in SUMS}
    rmse = s["rmse_sum"] / s["forecasts"]
    den = (s["forecast_anomaly_sq"] * s["target_anomaly_sq"]).sqrt()
    acc = torch.where(den > 0, s["anomaly_product"] / den.clamp_min(1e-300),
                      torch.full_like(den, float("nan")))
    per_lead = {name: [v if math.isfinite(v) else None for v in values.tolist()]
                for name, values in (("rmse", rmse), ("acc", acc))}  # undefined: null, never NaN
    defined = [v for v in per_lead["acc"] if v is not None]
    mean_rmse = float(rmse.mean())
    return {"per_lead": per_lead,
            "headline": {"rmse": mean_rmse if math.isfinite(mean_rmse) else None,
                         "acc": float(sum(defined) / len(defined))
                         if len(defined) == len(per_lead["acc"]) else None}}
