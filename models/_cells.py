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
import torch.nn.functional as F

from .base import RecurrentPredictor
from .fused import MapNorm, norm_groups, paired_conv, summed_kernel
from .patch import patched_shape


def gate_conv(
    in_channels: int, out_channels: int, filter_size: int, norm_hw: tuple[int, int] | None
) -> nn.Sequential:
    """Conv (no bias, padding k // 2), then LayerNorm([out_channels, *norm_hw]) if norm_hw."""
    modules: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, filter_size, padding=filter_size // 2, bias=False)
    ]
    if norm_hw is not None:
        modules.append(MapNorm([out_channels, *norm_hw]))
    return nn.Sequential(*modules)


def summed_gates(convs: list[nn.Sequential], inputs: list[torch.Tensor], targets, chunk: int):
    """The fused form of a cell's gate convolutions (``gate_conv``s of ``inputs``), as the list of
    output chunks where chunk t is the sum of the conv chunks ``targets`` places at t
    (models.fused.summed_kernel). Without norms: one convolution of the concatenated inputs.
    With norms (each conv normalised before the sums; see ``fusable``): one grouped or
    block-diagonal convolution and one group norm, the chunks then summed as placed."""
    if len(convs[0]) == 1:
        weight = summed_kernel([c[0].weight for c in convs], targets, chunk)
        out = F.conv2d(torch.cat(inputs, 1), weight, padding=weight.shape[-1] // 2)
        return list(out.split(chunk, dim=1))
    y = paired_conv(inputs, [c[0].weight for c in convs])
    outs = norm_groups(y, [c[1] for c in convs]).chunk(len(convs), dim=1)
    return place_chunks(outs, targets, chunk)


def fusable(convs: list[nn.Sequential]) -> tuple[str, ...]:
    """``("fused_convs",)`` where ``summed_gates`` can fuse these ``gate_conv``s: always without
    norms; with norms only when every output is as wide (one group norm over equal groups)."""
    normed = len(convs[0]) > 1
    return ("fused_convs",) if not normed or len({c[0].weight.shape[0] for c in convs}) == 1 else ()


def place_chunks(outs: list[torch.Tensor], targets, chunk: int) -> list[torch.Tensor]:
    """Output chunk t = the sum, in input order, of every chunk of ``outs`` placed at t."""
    sums: dict[int, torch.Tensor] = {}
    for out, ts in zip(outs, targets, strict=True):
        for piece, tt in zip(out.split(chunk, dim=1), ts, strict=True):
            for t in (tt,) if isinstance(tt, int) else tt:
                sums[t] = piece if t not in sums else sums[t] + piece
    return [sums[t] for t in range(len(sums))]


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
