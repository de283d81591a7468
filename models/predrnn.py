"""PredRNN: stacked spatiotemporal LSTMs with a memory that zig-zags through the layers.

Wang et al. 2017, "PredRNN: Recurrent Neural Networks for Predictive Learning using
Spatiotemporal LSTMs", NeurIPS. Reference code: OpenSTL (chengtan9907/OpenSTL, c74deb5),
``openstl/modules/predrnn_modules.py`` (``SpatioTemporalLSTMCell``) and
``openstl/models/predrnn_model.py`` (``PredRNN_Model``); this file computes what their forward
pass computes, checked against golden outputs (tests/test_convlstm_predrnn.py).

One ST-LSTM step, input x, temporal state (h, c) of this layer and spatiotemporal memory m,
all convolutions without bias, forget bias b = 1.0:

    i, f, g, i', f', g', o_x = split(conv_x(x), 7);  i_h, f_h, g_h, o_h = split(conv_h(h), 4)
    i_m, f_m, g_m = split(conv_m(m), 3)
    c' = sigmoid(f + f_h + b) * c + sigmoid(i + i_h) * tanh(g + g_h)
    m' = sigmoid(f' + f_m + b) * m + sigmoid(i' + i_m) * tanh(g' + g_m)
    o  = sigmoid(o_x + o_h + conv_o([c', m']))        (conv_o: k x k, 2*hidden -> hidden)
    h' = o * tanh(conv_mem([c', m']))                 (conv_mem: 1x1, OpenSTL's conv_last)

m leaves layer l as the input m of layer l + 1, and the top layer's m at step t is the bottom
layer's m at step t + 1, so every layer has the same ``hidden`` width.

Parameters at the defaults (64x64x1 frames, patch 4 -> C = 16 channels, hidden 128, 4 layers,
filter 5), per cell: conv_h 128*4*128*25 = 1,638,400, conv_m 128*3*128*25 = 1,228,800,
conv_o 256*128*25 = 819,200, conv_mem 256*128 = 32,768, plus conv_x: 16*7*128*25 = 358,400
in cell 0 (cell total 4,077,568) and 128*7*128*25 = 2,867,200 in cells 1-3 (6,586,368 each);
the readout has 128*16 = 2,048. Total 4,077,568 + 3 * 6,586,368 + 2,048 = 23,838,720.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._cells import CellStack, fusable, gate_conv, patched_config, summed_gates
from .fused import FastPathSwitch
from .patch import Patched
from .registry import register_model


class SpatioTemporalLSTMCell(FastPathSwitch, nn.Module):
    """``fused_convs`` (without layer norm): conv_x(x), conv_h(h), conv_m(m) as one convolution
    of [x, h, m] whose kernel places conv_h's and conv_m's rows at the conv_x chunks they are
    added to (models/_cells.py ``summed_gates``)."""

    # output chunks (i, f, g, i', f', g', o): conv_x's seven, conv_h's i f g o, conv_m's i f g
    GATES = ((0, 1, 2, 3, 4, 5, 6), (0, 1, 2, 6), (3, 4, 5))

    def __init__(
        self, in_channels: int, hidden: int, filter_size: int, norm_hw: tuple[int, int] | None,
        forget_bias: float = 1.0,
    ):
        super().__init__()
        self.hidden = hidden
        self.forget_bias = forget_bias
        self.conv_x = gate_conv(in_channels, 7 * hidden, filter_size, norm_hw)
        self.conv_h = gate_conv(hidden, 4 * hidden, filter_size, norm_hw)
        self.conv_m = gate_conv(hidden, 3 * hidden, filter_size, norm_hw)
        self.conv_o = gate_conv(2 * hidden, hidden, filter_size, norm_hw)
        self.conv_mem = nn.Conv2d(2 * hidden, hidden, kernel_size=1, bias=False)
        self.fast_paths = fusable([self.conv_x, self.conv_h, self.conv_m])

    def gate_terms(self, x: torch.Tensor, h: torch.Tensor, m: torch.Tensor):
        """The summed pre-activations (i, f, g, i', f', g', o) of the three gate convolutions."""
        convs, inputs = [self.conv_x, self.conv_h, self.conv_m], [x, h, m]
        if self.fused_convs:
            return summed_gates(convs, inputs, self.GATES, self.hidden)
        i_x, f_x, g_x, i_xm, f_xm, g_xm, o_x = torch.split(self.conv_x(x), self.hidden, dim=1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), self.hidden, dim=1)
        i_m, f_m, g_m = torch.split(self.conv_m(m), self.hidden, dim=1)
        return i_x + i_h, f_x + f_h, g_x + g_h, i_xm + i_m, f_xm + f_m, g_xm + g_m, o_x + o_h

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, m: torch.Tensor):
        i, f, g, i_m, f_m, g_m, o = self.gate_terms(x, h, m)
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        m = torch.sigmoid(f_m + self.forget_bias) * m + torch.sigmoid(i_m) * torch.tanh(g_m)
        mem = torch.cat([c, m], dim=1)
        o = torch.sigmoid(o + self.conv_o(mem))
        return o * torch.tanh(self.conv_mem(mem)), c, m


class PredRNN(CellStack):
    """``layers`` ST-LSTM cells; the state is (h per layer, c per layer, m)."""

    def __init__(
        self, frame_channels: int, hidden: int, layers: int, filter_size: int,
        norm_hw: tuple[int, int] | None = None,
    ):
        cells = [
            SpatioTemporalLSTMCell(
                frame_channels if i == 0 else hidden, hidden, filter_size, norm_hw
            )
            for i in range(layers)
        ]
        super().__init__(cells, frame_channels, hidden, norm_hw)

    def initial_state(self, frame: torch.Tensor):
        """(h per cell, c per cell, m), zeros: what ``step`` starts from at ``state=None``."""
        return self.zeros_per_cell(frame), self.zeros_per_cell(frame), self.zeros(frame)

    def step(self, frame: torch.Tensor, state):
        if state is None:
            zero = self.zeros(frame)
            state = ((zero,) * len(self.cells), (zero,) * len(self.cells), zero)
        h_prev, c_prev, m = state
        x, hs, cs = frame, [], []
        for cell, h, c in zip(self.cells, h_prev, c_prev, strict=True):
            x, c, m = cell(x, h, c, m)
            hs.append(x)
            cs.append(c)
        return self.readout(x), (tuple(hs), tuple(cs), m)


@register_model(
    "predrnn",
    family="PredRNN",
    paper="Wang et al. 2017, PredRNN: Recurrent Neural Networks for Predictive Learning using "
    "Spatiotemporal LSTMs, NeurIPS",
    width_arg="hidden",
)
def predrnn(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 4,
    hidden: int = 128,
    layers: int = 4,
    filter_size: int = 5,
    layer_norm: bool = False,
) -> nn.Module:
    """PredRNN at OpenSTL's Moving MNIST setting by default (23,838,720 parameters).

    ``layer_norm=True`` adds OpenSTL's LayerNorm after conv_x, conv_h, conv_m and conv_o (not
    after the 1x1 conv_mem), over [C_out, height / patch, width / patch]; the model then only
    runs at that frame size.
    """
    c, h, w = patched_config(
        channels, height, width, patch, hidden, layers, filter_size, layer_norm
    )
    core = PredRNN(c, hidden, layers, filter_size, (h, w) if layer_norm else None)
    return Patched(core, patch)
