"""OpenSTL's metric convention, per frame and batched in torch, kept beside the harness's own.

As ``metric`` in OpenSTL's ``openstl/core/metrics.py`` (github.com/chengtan9907/OpenSTL, commit
c74deb5) computes them for frames in [0, 1] shaped ``[B, T, C, H, W]``, each function giving
per-frame values ``[B, T]`` (docs/metrics.md sets them beside the harness's):

* MSE and MAE: squared / absolute error SUMMED over C, H, W of a frame, on the RAW predictions
  (``MSE``/``MAE`` with ``spatial_norm=False``: ``np.mean(..., axis=(0, 1)).sum()``, before
  ``metric`` clips the predictions to [0, 1]).
* SSIM: on the predictions clipped to [0, 1], ``structural_similarity(pred, true,
  multichannel=True)`` on float frames without ``data_range``; the scikit-image OpenSTL pins
  (<= 0.19.3, ``environment.yml``) then takes the range of the float dtype, -1..1, so
  data_range = 2 (scikit-image v0.19.3, ``skimage/metrics/_structural_similarity.py`` and
  ``skimage/util/dtype.py`` ``dtype_range``). Its 7x7 uniform window, sample covariance, mean
  over the valid interior and over channels are bench.evaluation.metrics.ssim's. (OpenSTL passes
  the frames as ``[W, H, C]``; the mean SSIM of a transposed frame is the same.)
* PSNR: on the clipped predictions, ``-10 log10`` of the frame's per-pixel MSE, peak 1 (OpenSTL's
  ``PSNR`` with ``min_max_norm=True``), capped at 100 dB for identical frames where OpenSTL gives
  inf (bench.evaluation.metrics.psnr).

OpenSTL averages every metric over all test clips and predicted frames (``metric`` on the whole
concatenated test set; SSIM and PSNR summed frame by frame and divided by B*T): the mean over
frames of the per-frame means accumulated here (bench.evaluation.metrics.PerFrameMetrics).
"""
from __future__ import annotations

import torch

from .metrics import mae, mse, psnr, ssim

NAMES = ("mse", "mae", "ssim", "psnr")
SSIM_DATA_RANGE = 2.0  # scikit-image <= 0.19.3's default for float frames: dtype range -1..1
CONVENTION = (
    "OpenSTL openstl/core/metrics.py c74deb5 (metric, spatial_norm=False): MSE and MAE summed over "
    "C*H*W per frame before clipping; predictions clipped to [0, 1] for SSIM and PSNR; SSIM as "
    "scikit-image <= 0.19.3 structural_similarity on float frames without data_range (7x7 uniform "
    "window, data range 2, mean over channels); PSNR from the per-pixel MSE, peak 1 (capped at "
    "100 dB); averaged over clips and frames"
)


def frame_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """OpenSTL's metrics per frame, ``{name: [B, T]}`` for name in ``NAMES``."""
    clipped = pred.clamp(0.0, 1.0)
    return {
        "mse": mse(pred, target),
        "mae": mae(pred, target),
        "ssim": ssim(clipped, target, data_range=SSIM_DATA_RANGE),
        "psnr": psnr(clipped, target),
    }
