"""The Moving MNIST generator of Srivastava, Mansimov and Salakhutdinov, "Unsupervised Learning of
Video Representations using LSTMs" (ICML 2015; data page
http://www.cs.toronto.edu/~nitish/unsupervised_video/), as OpenSTL implements it
(chengtan9907/OpenSTL ``openstl/datasets/dataloader_moving_mnist.py``, ``MovingMNIST``).

Each digit starts at a uniform random position in the free range (canvas minus digit size)
with a uniform random direction and moves 0.1 of the free range per frame. Like that code
(``get_random_trajectory``), a step is taken before every recorded frame, and a coordinate
that leaves [0, 1] is clamped to the wall and its velocity component flipped. Positions are
scaled to pixels and truncated to integers; digits are combined by pixel-wise max. Everything
is vectorised over clips (and digits); only time is a Python loop, in :func:`bounce_path`.
"""
from __future__ import annotations

import numpy as np

STEP = 0.1  # fraction of the free range moved per frame


def bounce_path(start: np.ndarray, angle: np.ndarray, seq_len: int, step: float = STEP):
    """Positions in the unit square, float64 ``[..., seq_len, 2]`` as (y, x).

    ``start`` is ``[..., 2]`` (y, x) in [0, 1]; ``angle`` is ``[...]`` in radians, the
    direction of motion with velocity (sin, cos) in (y, x). This is OpenSTL's
    ``get_random_trajectory`` loop, run for all leading indices at once.
    """
    pos = np.array(start, dtype=np.float64)
    vel = np.stack([np.sin(angle), np.cos(angle)], axis=-1)
    path = np.empty(pos.shape[:-1] + (seq_len, 2))
    for t in range(seq_len):
        pos += vel * step
        low, high = pos <= 0.0, pos >= 1.0
        pos = np.clip(pos, 0.0, 1.0)
        vel = np.where(low | high, -vel, vel)
        path[..., t, :] = pos
    return path


def trajectories(
    n_clips: int,
    seq_len: int,
    rng: np.random.Generator,
    frame_size: int = 64,
    digits_per_clip: int = 2,
    digit_size: int = 28,
) -> np.ndarray:
    """Random top-left digit positions in pixels, int64 ``[n_clips, digits, seq_len, 2]`` (y, x).

    Every position lies in ``[0, frame_size - digit_size]``.
    """
    free = frame_size - digit_size
    if free < 0:
        raise ValueError(f"frame_size {frame_size} is smaller than the digit size {digit_size}")
    draws = rng.random((n_clips, digits_per_clip, 3))  # per digit: y, x, direction
    return pixel_path(draws[..., :2], draws[..., 2] * 2 * np.pi, seq_len, free)


def pixel_path(start: np.ndarray, angle: np.ndarray, seq_len: int, free: int) -> np.ndarray:
    """:func:`bounce_path` scaled to ``[0, free]`` pixels and truncated, int64 ``[..., T, 2]``."""
    path = bounce_path(start, angle, seq_len)
    return (path * free).astype(np.int64)  # truncation, as OpenSTL's astype(np.int32)


def compose_clips(patches: np.ndarray, positions: np.ndarray, frame_size: int) -> np.ndarray:
    """Paste ``patches[n, k]`` (uint8 ``[n, k, h, w]``) at ``positions[n, k, t]`` by max.

    Returns uint8 ``[n, T, 1, frame_size, frame_size]``.
    """
    n, k, h, w = patches.shape
    seq_len = positions.shape[2]
    frames = np.zeros(n * seq_len * frame_size * frame_size, dtype=np.uint8)
    # Flat index of each patch pixel in each frame: frame offset + top-left offset + pixel.
    frame_start = np.arange(n * seq_len).reshape(n, seq_len) * frame_size * frame_size
    pixel = (np.arange(h)[:, None] * frame_size + np.arange(w)).reshape(-1)
    for slot in range(k):  # one slot never overlaps itself, so a plain fancy assignment works
        top_left = positions[:, slot, :, 0] * frame_size + positions[:, slot, :, 1]
        index = (frame_start + top_left)[..., None] + pixel  # [n, T, h*w]
        values = patches[:, slot].reshape(n, 1, h * w)
        frames[index] = np.maximum(frames[index], values)
    return frames.reshape(n, seq_len, 1, frame_size, frame_size)


def generate_clips(
    digits: np.ndarray,
    n_clips: int,
    seq_len: int,
    rng: np.random.Generator,
    frame_size: int = 64,
    digits_per_clip: int = 2,
) -> np.ndarray:
    """Moving-digit clips, uint8 ``[n_clips, seq_len, 1, frame_size, frame_size]``.

    ``digits`` is uint8 ``[N, h, w]`` (28x28 for MNIST); each clip draws ``digits_per_clip``
    of them uniformly with replacement. The same ``rng`` state gives the same clips.
    """
    digits = np.asarray(digits)
    if digits.dtype != np.uint8 or digits.ndim != 3 or len(digits) == 0:
        raise ValueError(
            f"digits must be a non-empty uint8 array [N, h, w]; got {digits.dtype} "
            f"of shape {digits.shape}"
        )
    for name, value, least in (
        ("n_clips", n_clips, 0),
        ("seq_len", seq_len, 1),
        ("digits_per_clip", digits_per_clip, 1),
    ):
        if int(value) != value or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    h, w = digits.shape[1:]
    if h != w:
        raise ValueError(f"digits must be square, got {h}x{w}")
    positions = trajectories(n_clips, seq_len, rng, frame_size, digits_per_clip, h)
    which = rng.integers(0, len(digits), size=(n_clips, digits_per_clip))
    return compose_clips(digits[which], positions, frame_size)
