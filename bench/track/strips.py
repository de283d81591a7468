"""Example clips as images: for each clip one strip, the input frames then the target frames on
the first row, the prediction under the target on the second (a gap of ``GAP`` pixels between
frames and rows, mid-grey where there is no frame)."""
from __future__ import annotations

import numpy as np

GAP = 2
GREY = 128


def clip_strip(inputs: np.ndarray, target: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """``[T, C, H, W]`` uint8 frames (C: 1, 3, or more: the first is shown) -> ``[H', W', 3]``."""
    if not (inputs.ndim == target.ndim == prediction.ndim == 4):
        raise ValueError(f"expected [T, C, H, W] frames, got shapes {inputs.shape}, "
                         f"{target.shape}, {prediction.shape}")
    t_in, t_out = len(inputs), len(target)
    h, w = inputs.shape[-2:]
    strip = np.full((2 * h + GAP, (t_in + t_out) * (w + GAP) - GAP, 3), GREY, dtype=np.uint8)
    rows = ((0, 0, inputs), (0, t_in, target), (1, t_in, prediction))
    for row, first, frames in rows:
        for k, frame in enumerate(frames):
            top, left = row * (h + GAP), (first + k) * (w + GAP)
            strip[top:top + h, left:left + w] = _rgb(frame)
    return strip


def strips(examples: dict | None, prefix: str) -> dict[str, np.ndarray]:
    """``{"input", "target", "prediction"}`` (``[N, T, C, H, W]`` uint8, as
    bench.evaluation.loop.evaluate keeps them) -> ``{f"{prefix}/clip_{i}": strip}``."""
    if not examples:
        return {}
    clips = zip(examples["input"], examples["target"], examples["prediction"], strict=True)
    return {f"{prefix}/clip_{i}": clip_strip(*clip) for i, clip in enumerate(clips)}


def _rgb(frame: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` -> ``[H, W, 3]``: RGB as it is, any other channel count its first channel."""
    if frame.shape[0] == 3:
        return frame.transpose(1, 2, 0)
    return np.repeat(frame[0][..., None], 3, axis=2)
