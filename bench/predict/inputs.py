"""Input frames for ``predict``, as ``[N, T, C, H, W]``: arrays from ``.npy``/``.npz``/``.h5``
files in the documented dataset layouts (read by the datasets' own readers,
datasets.files.readers), a folder of images (one frame each, in name order) or a video.

Files: a 5-D array is N sequences (``NTCHW``), a 4-D one a single sequence (``TCHW``), a 3-D one
a single-channel sequence (``THW``); ``layout`` names another (``NTHWC``, ``THWC``, ``NTHW``;
datasets.files.layouts). ``key`` picks the array of an ``.npz`` or the dataset of an HDF5 file
that holds several. Values are taken as they are stored (the data's units).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from datasets.files.readers import SequenceSource, format_of

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")
ARRAY_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")


def read_frames(path, key: str | None = None, layout: str | None = None,
                channels: int = 1) -> tuple[np.ndarray, bool]:
    """The frames at ``path`` as ``[N, T, C, H, W]`` and whether the input is one sequence
    (no N axis: a 4-D or 3-D array, an image folder, a video). ``channels``: how a video is
    decoded (1: gray, 3: RGB)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"--input {str(path)!r} not found")
    if path.is_dir():
        return image_folder(path)[None], True
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return video(path, channels)[None], True
    if suffix not in ARRAY_SUFFIXES:
        raise ValueError(f"--input {str(path)!r}: accepted inputs are {', '.join(ARRAY_SUFFIXES)} "
                         f"files, a folder of images ({', '.join(IMAGE_SUFFIXES)}) or a video "
                         f"({', '.join(VIDEO_SUFFIXES)})")
    source = SequenceSource(path, format_of(path, "auto"), key, None, layout)
    lengths = set(source.lengths)
    if len(lengths) != 1:
        raise ValueError(f"{path}: its {len(source)} sequences have {len(lengths)} different "
                         f"lengths ({', '.join(map(str, sorted(lengths)[:5]))}...); predict "
                         "takes sequences of one length")
    frames = np.stack([source.read(i, 0, source.lengths[i]) for i in range(len(source))])
    return frames, not source.layout.startswith("N")


def image_folder(folder: Path) -> np.ndarray:
    """``[T, C, H, W]`` from the images in ``folder``, in name order (gray: C = 1)."""
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"--input {str(folder)!r} is a folder without images "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    frames = []
    for file in files:
        with Image.open(file) as image:
            converted = {"1": "L", "P": "RGB"}.get(image.mode)  # bits and palettes as pixels
            array = np.asarray(image.convert(converted) if converted else image)
        frames.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ValueError(f"the images in {folder} have different shapes (C, H, W): "
                         f"{', '.join(map(str, sorted(shapes)))}; every frame must have one")
    return np.stack(frames)


def video(path: Path, channels: int) -> np.ndarray:
    """``[T, C, H, W]`` uint8 frames of a video, decoded by ffmpeg (imageio-ffmpeg)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ValueError(f"reading the video {path} needs imageio-ffmpeg: pip install "
                         "imageio-ffmpeg") from None
    if channels not in (1, 3):
        raise ValueError(f"a video decodes to 1 (gray) or 3 (RGB) channels; the model takes "
                         f"{channels}: give its frames as an array file instead")
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray" if channels == 1 else "rgb24",
                                        bpp=channels)
    width, height = next(reader)["size"]
    frames = [np.frombuffer(raw, np.uint8).reshape(height, width, channels) for raw in reader]
    if not frames:
        raise ValueError(f"the video {path} holds no frames")
    return np.stack(frames).transpose(0, 3, 1, 2)
