"""What the ConvLSTM and PredRNN models share (OpenSTL builds both the same way).

- ``gate_conv``: every gate convolution is a k x k 'same' convolution without bias, optionally
  followed by OpenSTL's LayerNorm over the whole ``[C_out, H, W]`` map (which ties the model
  to one spatial size).
- ``CellStack``: ``layers`` cells of ``hidden`` channels; the frame enters the bottom cell,
  each cell's new hidden state is the next cell's input, and a 1x1 convolution without bias
  reads the top hidden state out as the next frame. Every state starts at zero.
- ``patched_config``: the constructor checks both models run before building anything.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .base import RecurrentPredictor
from .patch import patched_shape


def gate_conv(
    in_channels: int, out_channels: int, filter_size: int, norm_hw: tuple[int, int] | None
) -> nn.Sequential:
    """Conv (no bias, padding k // 2), then LayerNorm([out_channels, *norm_hw]) if norm_hw."""
    modules: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, filter_size, padding=filter_size // 2, bias=False)
    ]
    if norm_hw is not None:
        modules.append(nn.LayerNorm([out_channels, *norm_hw]))
    return nn.Sequential(*modules)


class CellStack(RecurrentPredictor):
    """A stack of recurrent cells read out by a bias-free 1x1 conv; subclasses write ``step``."""

    def __init__(
        self, cells: list[nn.Module], frame_channels: int, hidden: int,
        norm_hw: tuple[int, int] | None,
    ):
        super().__init__()
        self.cells = nn.ModuleList(cells)
        self.hidden = hidden
        self.norm_hw = norm_hw
        self.readout = nn.Conv2d(hidden, frame_channels, kernel_size=1, bias=False)

    def zeros(self, frame: torch.Tensor) -> torch.Tensor:
        """A zero state ``[B, hidden, H, W]`` for ``frame`` ``[B, C, H, W]``."""
        if self.norm_hw is not None and tuple(frame.shape[-2:]) != self.norm_hw:
            raise ValueError(
                f"{type(self).__name__} was built with layer norm for {self.norm_hw[0]}x"
                f"{self.norm_hw[1]} states; got frames of {frame.shape[-2]}x{frame.shape[-1]}"
            )
        return frame.new_zeros(frame.shape[0], self.hidden, *frame.shape[-2:])

    def zeros_per_cell(self, frame: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One zero state per cell, each its own tensor (a compiled step guards on aliasing)."""
        return tuple(self.zeros(frame) for _ in self.cells)


def check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def patched_config(
    channels: int, height: int, width: int, patch: int, hidden: int, layers: int,
    filter_size: int, layer_norm: bool,
) -> tuple[int, int, int]:
    """Check the shared constructor arguments; return the (channels, height, width) per patch."""
    if layer_norm not in (True, False):  # OpenSTL's configs write 0 / 1
        raise ValueError(f"layer_norm must be True or False (or 1 / 0); got {layer_norm!r}")
    for name, value in [
        ("channels", channels), ("height", height), ("width", width), ("patch", patch),
        ("hidden", hidden), ("layers", layers), ("filter_size", filter_size),
    ]:
        check_positive(name, value)
    if filter_size % 2 == 0:
        raise ValueError(
            f"filter_size must be odd so 'same' padding keeps the frame size; got {filter_size}"
        )
    return patched_shape(channels, height, width, patch)
