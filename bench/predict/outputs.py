"""Writing predictions: the frames as ``.npy`` and a GIF strip of input and predicted frames."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

GIF_SEQUENCES = 4  # sequences side by side in the GIF (the first ones)
MIN_GIF_SIDE = 128  # frames smaller than this are enlarged (nearest neighbour) to be seen
MARK = 3  # pixels of the bar under the pictures: how far through the clip, and which part
INPUT, PREDICTED = 96, 255  # the bar's grey under input frames, white under predicted ones
SEPARATOR = 96  # the grey between sequences


def write_npy(path, frames: np.ndarray) -> Path:
    """Writes ``frames`` to ``path`` (through a temporary file: never a half-written one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as f:
        np.save(f, frames)
    os.replace(partial, path)
    return path


def to_uint8(frames: np.ndarray, offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Frames ``[..., C, H, W]`` in data units -> uint8 pixels of [0, 1] (clipped)."""
    unit = (np.asarray(frames, np.float64) - offset) / scale
    return (np.clip(unit, 0, 1) * 255).round().astype(np.uint8)


def gif_frames(inputs: np.ndarray, predicted: np.ndarray, offset, scale) -> list[np.ndarray]:
    """One picture per time step: the first sequences side by side, their input frames then
    their predicted ones, grey lines between them. A bar under the picture grows with the time
    step (so no two pictures are the same, which GIF writers would merge): grey under input
    frames, white under predicted ones."""
    clips = np.concatenate([inputs, predicted], axis=1)[:GIF_SEQUENCES]  # [N, T, C, H, W]
    pixels = to_uint8(clips, offset, scale)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    pixels = pixels[:, :, :3]
    zoom = max(1, -(-MIN_GIF_SIDE // max(pixels.shape[3:])))
    pixels = pixels.repeat(zoom, axis=3).repeat(zoom, axis=4)
    n, steps, _, height, width = pixels.shape
    pictures = []
    for t in range(steps):
        picture = np.full((height + MARK, n * (width + 2) - 2, 3), SEPARATOR, np.uint8)
        for i in range(n):
            picture[:height, i * (width + 2):i * (width + 2) + width] = pixels[i, t].transpose(1, 2, 0)
        picture[height:] = 0
        shown = -(-(t + 1) * picture.shape[1] // steps)  # the bar: how far through the clip
        picture[height:, :shown] = PREDICTED if t >= inputs.shape[1] else INPUT
        pictures.append(picture)
    return pictures


def write_gif(path, inputs: np.ndarray, predicted: np.ndarray, offset, scale,
              ms_per_frame: int = 250) -> Path:
    """An animated GIF (looping) of :func:`gif_frames`."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(p) for p in gif_frames(inputs, predicted, offset, scale)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return path
