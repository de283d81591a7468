"""PredRNN++: a cascade of Causal LSTMs with a Gradient Highway Unit after the first layer.

Wang et al. 2018, "PredRNN++: Towards A Resolution of the Deep-in-Time Dilemma in
Spatiotemporal Predictive Learning", ICML. Reference code: OpenSTL (chengtan9907/OpenSTL,
9da43f4), ``openstl/modules/predrnnpp_modules.py`` (``CausalLSTMCell``, ``GHU``) and
``openstl/models/predrnnpp_model.py`` (``PredRNNpp_Model``); this file computes what their
forward pass computes. All convolutions are bias-free; forget bias b = 1.0.

One Causal LSTM step, input x, this layer's (h, c) and the zig-zag memory m (as in PredRNN):

    i, f, g, i', f', g', o_x = split(conv_x(x), 7);  i_h, f_h, g_h, o_h = split(conv_h(h), 4)
    i_c, f_c, g_c = split(conv_c(c), 3);             i_m, f_m, m_m = split(conv_m(m), 3)
    c' = sigmoid(f + f_h + f_c + b) * c + sigmoid(i + i_h + i_c) * tanh(g + g_h + g_c)
    i_2, g_2, f_2, o_2 = split(conv_c2m(c'), 4)                       (note: i, g, f, o)
    m' = sigmoid(f' + f_m + f_2 + b) * tanh(m_m) + sigmoid(i' + i_m + i_2) * tanh(g' + g_2)
    o  = tanh(o_x + o_h + o_2 + conv_om(m'))                          (tanh, as in the paper)
    h' = o * tanh(conv_mem([c', m']))                                 (conv_mem: 1x1)

Gradient Highway Unit, between layers 1 and 2 (so ``layers >= 2``), with its own state z:

    p, u = split(conv_x(h_1) + conv_z(z), 2);  z' = sigmoid(u) * tanh(p) + (1 - sigmoid(u)) * z

and z' (not h_1) is layer 2's input. The GHU weights start uniform in [-0.001, 0.001] as in
OpenSTL (and the authors' TensorFlow code).

Left out / changed from OpenSTL: ``CausalLSTMCell.conv_o`` (k x k, 2*hidden -> hidden) is built
but never used by its forward; it is not built here (4 x 819,200 = 3,276,800 parameters, so
OpenSTL reports 38,584,320 at the defaults). With ``layer_norm`` OpenSTL's GHU puts
LayerNorm([hidden, H, W]) after a 2*hidden-channel convolution, which fails at run time; here
the norm covers all [2 * hidden, H, W] channels.

Parameters at the defaults (64x64x1 frames, patch 4 -> C = 16 channels, hidden 128, 4 layers,
filter 5), per cell: conv_h 128*4*128*25 = 1,638,400, conv_c 128*3*128*25 = 1,228,800,
conv_m 1,228,800, conv_c2m 128*4*128*25 = 1,638,400, conv_om 128*128*25 = 409,600,
conv_mem 256*128 = 32,768 (6,176,768), plus conv_x 16*7*128*25 = 358,400 in cell 0 (6,535,168)
and 128*7*128*25 = 2,867,200 in cells 1-3 (9,043,968 each); GHU 2 * 128*256*25 = 1,638,400;
readout 128*16 = 2,048. Total 6,535,168 + 3 * 9,043,968 + 1,638,400 + 2,048 = 35,307,520.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._cells import CellStack, fusable, gate_conv, patched_config, summed_gates
from .fused import FastPathSwitch
from .patch import Patched
from .registry import register_model


class CausalLSTMCell(FastPathSwitch, nn.Module):
    """``fused_convs`` (without layer norm): conv_x(x), conv_h(h), conv_c(c), conv_m(m) as one
    convolution of [x, h, c, m] (models/_cells.py ``summed_gates``)."""

    # output chunks (i, f, g, i', f', g', o, m_m): conv_x's seven, conv_h's i f g o,
    # conv_c's i f g, conv_m's i f m
    GATES = ((0, 1, 2, 3, 4, 5, 6), (0, 1, 2, 6), (0, 1, 2), (3, 4, 7))

    def __init__(
        self, in_channels: int, hidden: int, filter_size: int, norm_hw: tuple[int, int] | None,
        forget_bias: float = 1.0,
    ):
        super().__init__()
        self.hidden = hidden
        self.forget_bias = forget_bias
        self.conv_x = gate_conv(in_channels, 7 * hidden, filter_size, norm_hw)
        self.conv_h = gate_conv(hidden, 4 * hidden, filter_size, norm_hw)
        self.conv_c = gate_conv(hidden, 3 * hidden, filter_size, norm_hw)
        self.conv_m = gate_conv(hidden, 3 * hidden, filter_size, norm_hw)
        self.conv_c2m = gate_conv(hidden, 4 * hidden, filter_size, norm_hw)
        self.conv_om = gate_conv(hidden, hidden, filter_size, norm_hw)
        self.conv_mem = nn.Conv2d(2 * hidden, hidden, kernel_size=1, bias=False)
        self.fast_paths = fusable([self.conv_x, self.conv_h, self.conv_c, self.conv_m])

    def gate_terms(self, x, h, c, m):
        """The summed pre-activations (i, f, g, i', f', g', o, m_m) before c' is known."""
        if self.fused_convs:
            convs = [self.conv_x, self.conv_h, self.conv_c, self.conv_m]
            return summed_gates(convs, [x, h, c, m], self.GATES, self.hidden)
        i_x, f_x, g_x, i_xm, f_xm, g_xm, o_x = torch.split(self.conv_x(x), self.hidden, dim=1)
        i_h, f_h, g_h, o_h = torch.split(self.conv_h(h), self.hidden, dim=1)
        i_c, f_c, g_c = torch.split(self.conv_c(c), self.hidden, dim=1)
        i_m, f_m, m_m = torch.split(self.conv_m(m), self.hidden, dim=1)
        return (i_x + i_h + i_c, f_x + f_h + f_c, g_x + g_h + g_c, i_xm + i_m, f_xm + f_m, g_xm,
                o_x + o_h, m_m)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, m: torch.Tensor):
        i, f, g, i_m, f_m, g_m, o, m_m = self.gate_terms(x, h, c, m)
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        i_2, g_2, f_2, o_2 = torch.split(self.conv_c2m(c), self.hidden, dim=1)
        m = (torch.sigmoid(f_m + f_2 + self.forget_bias) * torch.tanh(m_m)
             + torch.sigmoid(i_m + i_2) * torch.tanh(g_m + g_2))
        o = torch.tanh(o + o_2 + self.conv_om(m))
        return o * torch.tanh(self.conv_mem(torch.cat([c, m], dim=1))), c, m


class GradientHighwayUnit(FastPathSwitch, nn.Module):
    """``fused_convs``: conv_x(x) + conv_z(z) as one convolution (``summed_gates``)."""

    fast_paths = ("fused_convs",)
    GATES = ((0, 1), (0, 1))

    def __init__(
        self, hidden: int, filter_size: int, norm_hw: tuple[int, int] | None, init: float = 0.001
    ):
        super().__init__()
        self.hidden = hidden
        self.conv_x = gate_conv(hidden, 2 * hidden, filter_size, norm_hw)
        self.conv_z = gate_conv(hidden, 2 * hidden, filter_size, norm_hw)
        for conv in (self.conv_x[0], self.conv_z[0]):
            nn.init.uniform_(conv.weight, -init, init)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.fused_convs:
            p, u = summed_gates([self.conv_x, self.conv_z], [x, z], self.GATES, self.hidden)
        else:
            p, u = torch.split(self.conv_x(x) + self.conv_z(z), self.hidden, dim=1)
        u = torch.sigmoid(u)
        return u * torch.tanh(p) + (1 - u) * z


class PredRNNpp(CellStack):
    """``layers`` Causal LSTMs, a GHU after the first; the state is (h's, c's, m, z)."""

    def __init__(
        self, frame_channels: int, hidden: int, layers: int, filter_size: int,
        norm_hw: tuple[int, int] | None = None,
    ):
        if layers < 2:
            raise ValueError(f"PredRNN++ needs layers >= 2 (the GHU feeds layer 2); got {layers}")
        cells = [
            CausalLSTMCell(frame_channels if i == 0 else hidden, hidden, filter_size, norm_hw)
            for i in range(layers)
        ]
        super().__init__(cells, frame_channels, hidden, norm_hw)
        self.highway = GradientHighwayUnit(hidden, filter_size, norm_hw)

    def step(self, frame: torch.Tensor, state):
        if state is None:
            zero = self.zeros(frame)
            state = ((zero,) * len(self.cells), (zero,) * len(self.cells), zero, zero)
        h_prev, c_prev, m, z = state
        x, hs, cs = frame, [], []
        for i, (cell, h, c) in enumerate(zip(self.cells, h_prev, c_prev, strict=True)):
            h, c, m = cell(x, h, c, m)
            hs.append(h)
            cs.append(c)
            x = h
            if i == 0:
                z = x = self.highway(h, z)
        return self.readout(x), (tuple(hs), tuple(cs), m, z)


@register_model(
    "predrnnpp",
    family="PredRNN",
    paper="Wang et al. 2018, PredRNN++: Towards A Resolution of the Deep-in-Time Dilemma in "
    "Spatiotemporal Predictive Learning, ICML",
    preset_args={"smoke": {"hidden": 8, "layers": 2}},
    width_arg="hidden",
)
def predrnnpp(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 4,
    hidden: int = 128,
    layers: int = 4,
    filter_size: int = 5,
    layer_norm: bool = False,
) -> nn.Module:
    """PredRNN++ at OpenSTL's Moving MNIST setting by default (35,307,520 parameters).

    ``layers`` must be >= 2. ``layer_norm=True`` adds LayerNorm after every k x k convolution
    (cells and GHU) over [C_out, height / patch, width / patch]; the model then only runs at
    that frame size.
    """
    c, h, w = patched_config(
        channels, height, width, patch, hidden, layers, filter_size, layer_norm
    )
    core = PredRNNpp(c, hidden, layers, filter_size, (h, w) if layer_norm else None)
    return Patched(core, patch)
