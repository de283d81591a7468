"""Embedded digit images that need no download: Pillow's own font, randomly distorted.

The ten digits are rendered once with the scalable font that Pillow ships
(``ImageFont.load_default(size=...)``, Pillow >= 10.1), size-normalised and centred the way
MNIST is (fit in a 20x20 box, centre of mass at the centre of 28x28), and blurred. Each
requested image then picks a digit and a stroke weight and samples that glyph through its own
random affine map (rotation, scale, aspect, shear, translation), followed by a random
threshold window (stroke thickness and edge softness) and peak intensity. Everything after the
ten renders is vectorised NumPy, so thousands of images take a fraction of a second.

These are typeset digits, not handwriting: they stand in for MNIST where MNIST is absent, and
are named as such (``SOURCE_EMBEDDED``).
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SOURCE_EMBEDDED = "embedded glyph digits (Pillow default font, randomly distorted; not MNIST)"

DIGIT_SIZE = 28
_BOX = 20  # MNIST fits each digit in a 20x20 box inside the 28x28 image
_SUPER = 2  # glyphs are rendered at twice the output resolution, then sampled down
_STROKE_WIDTHS = (0, 1, 2)  # extra outline in font pixels: regular, semibold, bold
_BLUR = 1.5  # Gaussian radius in supersampled pixels; the threshold window acts on this ramp
_CHUNK = 2048  # images per vectorised step, bounds peak memory

# Random parameter ranges (output pixels, radians, fractions of full intensity).
_ROTATION = np.deg2rad(15.0)
_SCALE = (0.8, 1.1)
_ASPECT = (0.8, 1.15)
_SHEAR = (-0.3, 0.3)
_SHIFT = 1.5
_THRESHOLD = (0.25, 0.55)  # low end of the window: lower draws thicker strokes
_SOFTNESS = (0.1, 0.35)  # width of the window: wider gives softer edges
_PEAK = (0.8, 1.0)
_N_UNIFORMS = 11  # random numbers drawn per image, one row each (see embedded_digits)


def embedded_digits(count: int, seed: int) -> np.ndarray:
    """Return ``count`` distorted digit images, uint8 ``[count, 28, 28]``, fixed by ``seed``.

    A shorter request is a prefix of a longer one with the same seed.
    """
    return embedded_digits_with_labels(count, seed)[0]


def embedded_digits_with_labels(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`embedded_digits`, also returning the digit shown, int64 ``[count]``."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")
    # One row of uniforms per image, filled row by row: the first k rows do not depend on count.
    u = np.random.default_rng(seed).random((int(count), _N_UNIFORMS))
    labels = np.minimum((u[:, 0] * 10).astype(np.int64), 9)
    images = np.empty((count, DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)
    for start in range(0, count, _CHUNK):
        rows = slice(start, start + _CHUNK)
        images[rows] = _distort(labels[rows], u[rows])
    return images, labels


@functools.lru_cache(maxsize=1)
def base_glyphs() -> np.ndarray:
    """The rendered glyphs, float32 ``[len(_STROKE_WIDTHS), 10, 56, 56]`` in [0, 1], blurred."""
    size = DIGIT_SIZE * _SUPER
    box = _BOX * _SUPER
    font = ImageFont.load_default(size=3 * box)
    glyphs = np.zeros((len(_STROKE_WIDTHS), 10, size, size), dtype=np.float32)
    for w, stroke in enumerate(_STROKE_WIDTHS):
        for digit in range(10):
            canvas = Image.new("L", (4 * box, 4 * box), 0)
            ImageDraw.Draw(canvas).text(
                (box, box), str(digit), fill=255, font=font, stroke_width=stroke,
                stroke_fill=255,
            )
            glyph = canvas.crop(canvas.getbbox())
            scale = box / max(glyph.size)
            glyph = glyph.resize(
                (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
                Image.Resampling.LANCZOS,
            )
            placed = _centre_of_mass_placement(np.asarray(glyph, dtype=np.float32), size)
            blurred = Image.fromarray(placed).filter(ImageFilter.GaussianBlur(_BLUR))
            glyphs[w, digit] = np.asarray(blurred, dtype=np.float32) / 255.0
    glyphs /= glyphs.max(axis=(2, 3), keepdims=True)
    glyphs.setflags(write=False)
    return glyphs


def _centre_of_mass_placement(glyph: np.ndarray, size: int) -> np.ndarray:
    """Paste ``glyph`` into a ``size`` x ``size`` canvas with its centre of mass at the centre."""
    h, w = glyph.shape
    ys, xs = np.mgrid[0:h, 0:w]
    mass = glyph.sum()
    cy, cx = (ys * glyph).sum() / mass, (xs * glyph).sum() / mass
    top = int(round((size - 1) / 2 - cy))
    left = int(round((size - 1) / 2 - cx))
    top = min(max(top, 0), size - h)
    left = min(max(left, 0), size - w)
    canvas = np.zeros((size, size), dtype=np.uint8)
    canvas[top : top + h, left : left + w] = np.clip(glyph, 0, 255).astype(np.uint8)
    return canvas


def _lerp(u: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return bounds[0] + (bounds[1] - bounds[0]) * u


def _distort(labels: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sample each image's glyph through its affine map and intensity window (vectorised)."""
    glyphs = base_glyphs()
    n_weights, _, src, _ = glyphs.shape
    n = len(labels)
    weight = np.minimum((u[:, 1] * n_weights).astype(np.int64), n_weights - 1)
    angle = _lerp(u[:, 2], (-_ROTATION, _ROTATION))
    scale = _lerp(u[:, 3], _SCALE)
    aspect = _lerp(u[:, 4], _ASPECT)
    shear = _lerp(u[:, 5], _SHEAR)
    shift = _lerp(u[:, 6:8], (-_SHIFT, _SHIFT))  # (dy, dx)

    # Forward map (glyph -> image): A = R(angle) @ Shear(shear) @ diag(scale, scale*aspect),
    # acting on (y, x) offsets from the centre. Sampling needs the inverse.
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shr = np.zeros((n, 2, 2))
    shr[:, 0, 0] = shr[:, 1, 1] = 1.0
    shr[:, 1, 0] = shear  # x moves with y: a slant
    diag = np.zeros((n, 2, 2))
    diag[:, 0, 0] = scale
    diag[:, 1, 1] = scale * aspect
    inverse = np.linalg.inv(rot @ shr @ diag)  # [n, 2, 2]

    inverse = inverse.astype(np.float32) * _SUPER
    shift = shift.astype(np.float32)
    centre = (DIGIT_SIZE - 1) / 2
    gy, gx = (np.mgrid[0:DIGIT_SIZE, 0:DIGIT_SIZE].reshape(2, 1, -1) - centre).astype(np.float32)
    oy, ox = gy - shift[:, :1], gx - shift[:, 1:]  # [n, P] offsets in the glyph's own frame
    middle = (src - 1) / 2
    cy = inverse[:, 0, 0, None] * oy + inverse[:, 0, 1, None] * ox + middle
    cx = inverse[:, 1, 0, None] * oy + inverse[:, 1, 1, None] * ox + middle
    values = _bilinear(glyphs.reshape(-1, src, src), weight * 10 + labels, cy, cx)

    low = _lerp(u[:, 8], _THRESHOLD)[:, None]
    width = _lerp(u[:, 9], _SOFTNESS)[:, None]
    peak = _lerp(u[:, 10], _PEAK)[:, None]
    out = np.clip((values - low) / width, 0.0, 1.0) * peak * 255.0
    return np.rint(out).astype(np.uint8).reshape(n, DIGIT_SIZE, DIGIT_SIZE)


def _bilinear(images: np.ndarray, which: np.ndarray, cy: np.ndarray, cx: np.ndarray):
    """Sample ``images[which[k]]`` at float positions ``(cy[k], cx[k])``; zero outside."""
    side = images.shape[-1] + 2
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1))).reshape(-1)
    # Shift into the padded frame and clamp there: the zero border stands for "outside".
    cy = np.clip(cy + 1.0, 0.0, side - 1.001)
    cx = np.clip(cx + 1.0, 0.0, side - 1.001)
    y0 = cy.astype(np.intp)  # truncation is floor here: coordinates are >= 0
    x0 = cx.astype(np.intp)
    fy = cy - y0
    fx = cx - x0
    idx = y0 * side + x0 + (which * side * side)[:, None]
    top = padded[idx] + (padded[idx + 1] - padded[idx]) * fx
    bottom = padded[idx + side] + (padded[idx + side + 1] - padded[idx + side]) * fx
    return top + (bottom - top) * fy
