"""Per-frame video-prediction metrics (MSE, MAE, PSNR, SSIM), batched in torch.

Conventions (docs/metrics.md gives their sources), all on frames in [0, 1] shaped
``[B, T, C, H, W]``; every function returns per-frame values ``[B, T]`` and runs on the tensors'
device with no Python loop over samples or frames:

* MSE / MAE are SUMMED over pixels and channels of a frame (e.g. over 64*64 pixels), as
  MoDeRNN, PredRNN and OpenSTL report them. A per-pixel mean silently divides by H*W*C
  (OpenSTL issue #134), so it is only offered under its own name, ``mse_per_pixel``.
* PSNR = 10*log10(1 / mse_per_pixel), peak 1.0, computed in floating point from float
  frames, never by subtracting uint8 arrays (which wraps around: SimVP, OpenSTL issue #191).
  For identical frames the MSE is clamped to ``PSNR_EPS`` = 1e-10, so PSNR is capped at
  100 dB: always finite, never NaN or inf, and safe to average.
* SSIM follows ``skimage.metrics.structural_similarity`` defaults: 7x7 uniform window,
  K1=0.01, K2=0.03, sample covariance (N/(N-1)), mean over the valid interior only, mean
  over channels. ``data_range`` is always explicit (OpenSTL omitted it, so old scikit-image
  assumed 2 for float frames and inflated SSIM).
* ``frame_metrics`` clips predictions to [0, 1] first by default, as the MoDeRNN code does
  (OpenSTL computes MSE/MAE before clipping), and takes SSIM on uint8-quantised frames as
  MoDeRNN and PredRNN do. OpenSTL's own convention, built from the same functions, is
  bench.evaluation.openstl.

Everything is computed in float64 (float32 on MPS, which lacks float64) whatever the input
dtype (bf16/fp16 included): SSIM's ``E[x^2] - E[x]^2`` cancels badly in float32.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F

PSNR_EPS = 1e-10
METRIC_NAMES = ("mse", "mse_per_pixel", "mae", "psnr", "ssim")


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: pred {tuple(pred.shape)} vs "
            f"target {tuple(target.shape)}"
        )
    if pred.dim() != 5:
        raise ValueError(f"expected [B, T, C, H, W] frames, got shape {tuple(pred.shape)}")


def _f(x: torch.Tensor) -> torch.Tensor:
    """Cast to the compute dtype: float64 (float32 on MPS)."""
    return x.to(torch.float32 if x.device.type == "mps" else torch.float64)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error SUMMED over C, H, W per frame -> [B, T] (not a per-pixel mean)."""
    _check(pred, target)
    return (_f(pred) - _f(target)).square().sum(dim=(2, 3, 4))


def mse_per_pixel(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error AVERAGED over C, H, W per frame -> [B, T]; label it as per-pixel."""
    _check(pred, target)
    return (_f(pred) - _f(target)).square().mean(dim=(2, 3, 4))


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Absolute error SUMMED over C, H, W per frame -> [B, T]."""
    _check(pred, target)
    return (_f(pred) - _f(target)).abs().sum(dim=(2, 3, 4))


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """10*log10(data_range^2 / mse_per_pixel) per frame -> [B, T].

    Float arithmetic throughout (no uint8 wraparound). The per-pixel MSE is clamped to
    ``PSNR_EPS * data_range**2``, so identical frames give 100 dB, not inf or NaN.
    """
    m = mse_per_pixel(pred, target).clamp_min(PSNR_EPS * data_range**2)
    return 10.0 * torch.log10(data_range**2 / m)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM per frame -> [B, T], matching scikit-image's ``structural_similarity``.

    Same as ``structural_similarity(t, p, data_range=data_range, channel_axis=0)`` on each
    [C, H, W] frame: uniform ``win_size`` window, sample covariance, mean over channels.
    scikit-image filters with reflect padding and then crops ``(win_size - 1) // 2`` pixels
    per border before averaging; that interior is exactly the 'valid' part of the filter,
    so a padding-free ``avg_pool2d`` yields the same numbers.
    """
    _check(pred, target)
    b, t, c, h, w = pred.shape
    if min(h, w) < win_size:
        raise ValueError(f"frames of {h}x{w} are smaller than the SSIM window {win_size}")
    x = _f(pred).reshape(b * t * c, 1, h, w)
    y = _f(target).reshape(b * t * c, 1, h, w)
    # One pooling call for all five local moments.
    mom = F.avg_pool2d(torch.cat([x, y, x * x, y * y, x * y], dim=1), win_size, stride=1)
    ux, uy, uxx, uyy, uxy = mom.unbind(dim=1)
    cov_norm = win_size**2 / (win_size**2 - 1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(1, 2)).reshape(b, t, c).mean(dim=2)


def quantize_uint8(frames: torch.Tensor) -> torch.Tensor:
    """round(clip(x, 0, 1) * 255) as uint8 (round half to even, as ``np.round``).

    Convert back to float (e.g. ``q / 255``) before any arithmetic: uint8 differences wrap.
    """
    return (_f(frames).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def frame_metrics(
    pred: torch.Tensor, target: torch.Tensor, clip: bool = True
) -> dict[str, torch.Tensor]:
    """All metrics per frame, ``{name: [B, T]}`` for name in ``METRIC_NAMES``.

    ``clip=True`` (default, as the MoDeRNN authors) clamps ``pred`` to [0, 1] before every
    metric; ``clip=False`` computes MSE/MAE/PSNR on the raw predictions (OpenSTL's order).
    SSIM is always taken on uint8-quantised frames (MoDeRNN/PredRNN convention), which
    clips in any case; it equals scikit-image on the uint8 arrays with data_range=255.
    """
    _check(pred, target)
    if clip:
        pred = pred.clamp(0.0, 1.0)
    return {
        "mse": mse(pred, target),
        "mse_per_pixel": mse_per_pixel(pred, target),
        "mae": mae(pred, target),
        "psnr": psnr(pred, target),
        "ssim": ssim(quantize_uint8(pred) / 255.0, quantize_uint8(target) / 255.0),
    }


class PerFrameMetrics:
    """Accumulates ``frame_metrics`` (or another ``convention``) over batches; torchmetrics-style.

    ``update`` adds per-frame sums over the batch on the tensors' device (no host sync);
    ``compute`` returns per-frame means over all sequences seen, ``{name: [T]}``. Under an
    initialised torch.distributed group the sums and counts are all-reduced (SUM) first;
    every rank must then have called ``update`` at least once.
    """

    def __init__(self, clip: bool = True, extra: dict | None = None,
                 convention: Callable[[torch.Tensor, torch.Tensor], dict] | None = None) -> None:
        """``extra``: more per-frame metrics, ``{name: fn(pred, target) -> [B, T]}``, given the
        raw predictions (each clips as its definition says; e.g. LPIPS, bench.evaluation.lpips).
        ``convention``: the per-frame metrics to accumulate, ``fn(pred, target) -> {name: [B, T]}``
        (e.g. bench.evaluation.openstl.frame_metrics); default ``frame_metrics`` with ``clip``."""
        self.clip = clip
        self.extra = dict(extra or {})
        self.convention = convention or functools.partial(frame_metrics, clip=clip)
        self.reset()

    def reset(self) -> None:
        self._sums: dict[str, torch.Tensor] | None = None
        self._count: torch.Tensor | None = None

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Adds the batch; returns its per-frame values ``{name: [B, T]}`` (e.g. for per-clip
        statistics)."""
        values = self.convention(pred, target)
        dtype = next(iter(values.values())).dtype
        for name, fn in self.extra.items():
            values[name] = fn(pred, target).to(device=pred.device, dtype=dtype)
        if self._sums is None:
            self._sums = {k: v.sum(dim=0) for k, v in values.items()}
            self._count = torch.zeros((), dtype=dtype, device=pred.device)
        else:
            t_seen, t_new = next(iter(self._sums.values())).shape[0], pred.shape[1]
            if t_new != t_seen:
                raise ValueError(f"horizon changed: {t_new} frames, earlier batches {t_seen}")
            for k, v in values.items():
                self._sums[k] += v.sum(dim=0)
        self._count += pred.shape[0]
        return values

    def compute(self) -> dict[str, torch.Tensor]:
        if self._sums is None:
            raise RuntimeError("PerFrameMetrics.compute() called before any update()")
        sums = {k: v.clone() for k, v in self._sums.items()}
        count = self._count.clone()
        if dist.is_available() and dist.is_initialized():
            for v in sums.values():
                dist.all_reduce(v, op=dist.ReduceOp.SUM)
            dist.all_reduce(count, op=dist.ReduceOp.SUM)
        return {k: v / count for k, v in sums.items()}

    def headline(self) -> dict[str, float]:
        """Per-frame means averaged over the horizon, as Python floats."""
        return {k: v.mean().item() for k, v in self.compute().items()}
