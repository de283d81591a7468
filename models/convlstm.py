"""ConvLSTM: an LSTM whose gates are convolutions over feature maps.

Shi et al. 2015, "Convolutional LSTM Network: A Machine Learning Approach for Precipitation
Nowcasting", NeurIPS. Reference code: OpenSTL (chengtan9907/OpenSTL, c74deb5),
``openstl/modules/convlstm_modules.py`` (``ConvLSTMCell``) and
``openstl/models/convlstm_model.py`` (``ConvLSTM_Model``); this file computes what their forward
pass computes, checked against golden outputs (tests/test_convlstm_predrnn.py).

One cell step, input x and state (h, c), all convolutions without bias:

    i, f, g, o = split(conv_x(x) + conv_h(h), 4)
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
    h' = sigmoid(o) * tanh(c')

As in OpenSTL, and unlike the paper, there are no peephole terms and no gate biases. OpenSTL's
cell also sets a forget bias of 1.0 that its forward never adds, and defines ``conv_o`` and
``conv_last`` weights that its forward never uses; the bias is not added here and those weights
are left out (OpenSTL's parameter count, 15,083,520 at the defaults, includes them:
4 cells x (256*128*25 + 256*128) = 3,407,872 more than below).

Parameters at the defaults (64x64x1 frames, patch 4 -> C = 16 channels, hidden 128, 4 layers,
filter 5): cell 0 has conv_x 16*4*128*25 = 204,800 and conv_h 128*4*128*25 = 1,638,400;
cells 1-3 have 2 * 1,638,400 = 3,276,800 each; the readout has 128*16 = 2,048.
Total 204,800 + 1,638,400 + 3 * 3,276,800 + 2,048 = 11,675,648.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._cells import CellStack, gate_conv, patched_config, summed_gates
from .fused import FastPathSwitch
from .patch import Patched
from .registry import register_model


class ConvLSTMCell(FastPathSwitch, nn.Module):
    """``fused_convs``: conv_x(x) + conv_h(h) as one convolution of [x, h] (models/_cells.py
    ``summed_gates``; with layer norm one grouped convolution and a group norm)."""

    fast_paths = ("fused_convs",)
    GATES = ((0, 1, 2, 3), (0, 1, 2, 3))  # i, f, g, o of conv_x and of conv_h: summed

    def __init__(
        self, in_channels: int, hidden: int, filter_size: int, norm_hw: tuple[int, int] | None
    ):
        super().__init__()
        self.conv_x = gate_conv(in_channels, 4 * hidden, filter_size, norm_hw)
        self.conv_h = gate_conv(hidden, 4 * hidden, filter_size, norm_hw)
        self.hidden = hidden

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        if self.fused_convs:
            i, f, g, o = summed_gates([self.conv_x, self.conv_h], [x, h], self.GATES, self.hidden)
        else:
            i, f, g, o = torch.chunk(self.conv_x(x) + self.conv_h(h), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTM(CellStack):
    """``layers`` ConvLSTM cells; the state is (h per layer, c per layer)."""

    def __init__(
        self, frame_channels: int, hidden: int, layers: int, filter_size: int,
        norm_hw: tuple[int, int] | None = None,
    ):
        cells = [
            ConvLSTMCell(frame_channels if i == 0 else hidden, hidden, filter_size, norm_hw)
            for i in range(layers)
        ]
        super().__init__(cells, frame_channels, hidden, norm_hw)

    def initial_state(self, frame: torch.Tensor):
        """(h per cell, c per cell), zeros: what ``step`` starts from at ``state=None``."""
        return self.zeros_per_cell(frame), self.zeros_per_cell(frame)

    def step(self, frame: torch.Tensor, state):
        if state is None:
            zeros = (self.zeros(frame),) * len(self.cells)
            state = (zeros, zeros)
        x, hs, cs = frame, [], []
        for cell, h, c in zip(self.cells, *state, strict=True):
            x, c = cell(x, h, c)
            hs.append(x)
            cs.append(c)
        return self.readout(x), (tuple(hs), tuple(cs))


@register_model(
    "convlstm",
    family="ConvLSTM",
    paper="Shi et al. 2015, Convolutional LSTM Network: A Machine Learning Approach for "
    "Precipitation Nowcasting, NeurIPS",
    width_arg="hidden",
)
def convlstm(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 4,
    hidden: int = 128,
    layers: int = 4,
    filter_size: int = 5,
    layer_norm: bool = False,
) -> nn.Module:
    """ConvLSTM at OpenSTL's Moving MNIST setting by default (11,675,648 parameters).

    ``layer_norm=True`` adds OpenSTL's LayerNorm after each gate convolution, over
    [4 * hidden, height / patch, width / patch]; the model then only runs at that frame size.
    """
    c, h, w = patched_config(
        channels, height, width, patch, hidden, layers, filter_size, layer_norm
    )
    core = ConvLSTM(c, hidden, layers, filter_size, (h, w) if layer_norm else None)
    return Patched(core, patch)
