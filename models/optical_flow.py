"""Optical flow: the nowcasting baseline (Lucas-Kanade motion, semi-Lagrangian extrapolation).

No parameters, no training; evaluated like persistence, which it should beat wherever things
move. Through pysteps (Pulkkinen et al., GMD 2019; an optional dependency, ``pip install
pysteps opencv-python-headless``):

- motion: ``pysteps.motion.get_method("LK")`` (``pysteps/motion/lucaskanade.py``,
  ``dense_lucaskanade``: Shi-Tomasi corners tracked by OpenCV's pyramidal Lucas-Kanade, then
  interpolated to a dense field) on the last ``motion_frames`` input frames;
- extrapolation: ``pysteps.nowcasts.get_method("extrapolation")`` (``pysteps/nowcasts/
  extrapolation.py``; semi-Lagrangian by default, ``pysteps/extrapolation/semilagrangian.py``)
  of the last input frame along that field for each future frame.

Pixels advected in from outside the frame take the last frame's minimum (its background; the
semi-Lagrangian scheme would leave them NaN); a field without trackable features gives no motion,
i.e. persistence. Works per clip on the CPU in float64 (pysteps is NumPy); single-channel frames.
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import torch
import torch.nn as nn

from .base import Prediction, check_call
from .registry import register_model

INSTALL = "pip install pysteps opencv-python-headless (or: pip install -e \".[nowcast]\")"


def _pysteps():
    """pysteps' motion and nowcast modules, imported quietly (it prints its config file's path)."""
    with contextlib.redirect_stdout(io.StringIO()):
        from pysteps import motion, nowcasts
    return motion, nowcasts


class OpticalFlow(nn.Module):
    counts_operations = False  # NumPy and OpenCV: no FLOP counter sees its work (bench.cost)

    def __init__(self, motion_frames: int = 3):
        super().__init__()
        if isinstance(motion_frames, bool) or not isinstance(motion_frames, int) or motion_frames < 2:
            raise ValueError(f"motion_frames must be an integer >= 2 (Lucas-Kanade tracks between "
                             f"frames); got {motion_frames!r}")
        self.motion_frames = motion_frames

    def forward(self, frames, in_len: int, out_len: int, truth_mask=None) -> Prediction:
        check_call(frames, in_len, out_len, truth_mask)
        if frames.shape[2] != 1:
            raise ValueError(f"optical_flow needs single-channel frames; got {frames.shape[2]} "
                             "channels")
        if in_len < 2:
            raise ValueError(f"optical_flow needs at least 2 input frames; got in_len={in_len}")
        motion, nowcasts = _pysteps()
        track, extrapolate = motion.get_method("LK"), nowcasts.get_method("extrapolation")
        seen = frames[:, max(0, in_len - self.motion_frames):in_len, 0]
        clips = seen.detach().to("cpu", torch.float64).numpy()
        future = np.stack([self._one(clip, out_len, track, extrapolate) for clip in clips])
        out = torch.from_numpy(future).to(frames.device, frames.dtype)
        return Prediction(future=out[:, :, None])

    @staticmethod
    def _one(clip: np.ndarray, out_len: int, track, extrapolate) -> np.ndarray:
        """``[T, H, W]`` input frames -> ``[out_len, H, W]`` in [0, 1]."""
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # pysteps reports progress on stdout; its outlier filter warns on a tracked point
            # with too few neighbours (NumPy's np.cov), which it then leaves out
            warnings.simplefilter("ignore", RuntimeWarning)
            velocity = np.nan_to_num(track(clip, verbose=False))
            last = clip[-1]
            background = float(last.min())
            future = extrapolate(last, velocity, out_len, extrap_kwargs={"outval": background})
        return np.clip(np.nan_to_num(future, nan=background), 0.0, 1.0)


@register_model("optical_flow", family="baseline",
                paper="Lucas-Kanade motion + semi-Lagrangian extrapolation of the last frame "
                      "(pysteps; no training; 1 channel)",
                requires=("pysteps", "cv2"), install=INSTALL)
def optical_flow(channels: int = 1, height: int = 64, width: int = 64,
                 motion_frames: int = 3) -> nn.Module:
    if channels != 1:
        raise ValueError(f"optical_flow needs single-channel frames; got channels={channels}")
    return OpticalFlow(motion_frames)
