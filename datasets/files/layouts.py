"""Axis layouts of stored frames, and reading any of them as ``[T, C, H, W]`` frames.

N: sequences, T: frames, C: channels, H, W: height and width. A file's array is read in the
layout its TOML gives (``layout = "NTHWC"``); without one, the rank picks the default (5-D
``NTCHW``, 4-D ``TCHW``, 3-D ``THW``), and a shape that looks like another layout is an error
that names the layout to set rather than a puzzling one later.
"""
from __future__ import annotations

import numpy as np

LAYOUTS = ("NTCHW", "TCHW", "NTHW", "THW", "NTHWC", "THWC")
DEFAULT_LAYOUT = {5: "NTCHW", 4: "TCHW", 3: "THW"}
MAX_CHANNELS = 4  # more, where the default puts channels, suggests another layout


class LayoutError(ValueError):
    """An array whose shape does not fit its (given or default) layout."""


def check_layout(layout: str | None, what: str) -> None:
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"{what}: layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")


def choose_layout(where: str, shape: tuple, layout: str | None) -> str:
    """The layout to read an array of ``shape`` with: ``layout`` if given (its rank checked),
    else the rank's default unless the shape suggests another layout."""
    shape = tuple(int(n) for n in shape)
    fitting = [name for name in LAYOUTS if len(name) == len(shape)]
    if layout is not None:
        if len(layout) != len(shape):
            raise LayoutError(f"{where} has shape {shape} (rank {len(shape)}), but layout "
                              f"{layout!r} needs rank {len(layout)}; layouts of rank "
                              f"{len(shape)}: {', '.join(fitting) or 'none'}")
        return layout
    default = DEFAULT_LAYOUT.get(len(shape))
    if default is None:
        raise LayoutError(f"{where} has shape {shape} (rank {len(shape)}); expected rank 3, 4 or 5 "
                          f"in one of the layouts {', '.join(LAYOUTS)}")
    likely = _likely_layout(shape)
    if likely is not None:
        channels = shape[len(shape) - 3]
        raise LayoutError(
            f"{where} has shape {shape}: read in the default layout {default!r} its frames would "
            f"have {channels} channels, more than the usual 1 to {MAX_CHANNELS}; it looks like "
            f"{likely!r}. Set layout = \"{likely}\" in the dataset's TOML (or layout = "
            f"\"{default}\" if {channels} channels is right)")
    return default


def _likely_layout(shape: tuple) -> str | None:
    rank = len(shape)
    if rank == 3 or shape[rank - 3] <= MAX_CHANNELS:
        return None
    if shape[-1] <= MAX_CHANNELS:  # channels last: [N, T, H, W, C] or [T, H, W, C]
        return "NTHWC" if rank == 5 else "THWC"
    return "NTHW" if rank == 4 else None  # 5-D with many channels: taken as it is


def layout_opener(array, layout: str) -> dict:
    """``{"reader": f(seq, start, stop) -> [stop - start, C, H, W], "lengths", "frame_shape"}``
    of an array (NumPy, memory map or HDF5 dataset) stored in ``layout``."""
    size = dict(zip(layout, (int(n) for n in array.shape), strict=True))
    several = layout.startswith("N")

    def read(seq: int, start: int, stop: int) -> np.ndarray:
        frames = np.asarray(array[seq, start:stop] if several else array[start:stop])
        if "C" not in layout:
            return frames[:, None]
        return frames.transpose(0, 3, 1, 2) if layout.endswith("C") else frames

    return {"reader": read, "lengths": [size["T"]] * size.get("N", 1),
            "frame_shape": (size.get("C", 1), size["H"], size["W"]), "layout": layout}
