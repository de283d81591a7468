"""MIM: Memory In Memory, an ST-LSTM first layer and MIM blocks above it.

Wang et al. 2019, "Memory In Memory: A Predictive Neural Network for Learning Higher-Order
Non-Stationarity from Spatiotemporal Dynamics", CVPR. Reference code: OpenSTL
(chengtan9907/OpenSTL), ``modules/mim_modules.py`` at 1312316 (``MIMBlock``, ``MIMN``) and
``openstl/models/mim_model.py`` at 9da43f4 (``MIM_Model``), checked against the authors' TensorFlow code
(Yunbo426/MIM, ``src/layers/MIMBlock.py``, ``src/models/mim.py``). All convolutions are
bias-free; forget bias b = 1.0.

Layer 0 is PredRNN's ST-LSTM (models/predrnn.py). Layers l >= 1 are MIM blocks; each has a
MIM-N below it (OpenSTL's ``stlstm_layer_diff``), and the zig-zag memory m runs through all
layers as in PredRNN. Both MIM-N and MIM-S (inside the block) are a ``PeepholeConvLSTM``:
input x, hidden h, cell c, Hadamard peephole weights w_if [2*hidden, H, W], w_o [hidden, H, W]:

    i_x, g_x, f_x, o_x = split(conv_x(x), 4);  i_h, g_h, f_h, o_h = split(conv_h(h), 4)
    c' = sigmoid(f_x + f_h + w_f * c + b) * c + sigmoid(i_x + i_h + w_i * c) * tanh(g_x + g_h)
    h' = sigmoid(o_x + o_h + w_o * c') * tanh(c')

- MIM-N of layer l (non-stationarity memory: its own (n_h, n_c)) reads a difference:
  h_0(t) - h_0(t-1) for l = 1, the new n_h of layer l - 1 above that. At t = 0 it is not run
  (its state stays zero), as in both references.
- The MIM block of layer l, input x (the h of the layer below), its own (h, c), m, and the
  stationarity memory s of its MIM-S (which takes x = n_h of this layer and h = c):

      i_x, g_x, f_x, o_x = split(conv_x(x), 4);  i_t, g_t, o_t = split(conv_h(h), 3)
      i_s, g_s, f_s, o_s = split(conv_m(m), 4)
      m' = sigmoid(f_x + f_s + b) * m + sigmoid(i_x + i_s) * tanh(g_x + g_s)
      T, s' = MIM-S(x=n_h, h=c, c=s);  c' = T + sigmoid(i_x + i_t) * tanh(g_x + g_t)
      h' = sigmoid(o_x + o_t + o_s) * tanh(conv_mem([c', m']))            (conv_mem: 1x1)

Differences from OpenSTL: OpenSTL keeps MIM-S's cell s on the module (``self.convlstm_c``),
detaches it every step and never resets it, so it leaks from one batch into the next (and breaks
when the batch size changes). Here s is part of the recurrent state: zero at the start of each
sequence, carried with gradient, as in the authors' TensorFlow graph. ``MIMN.conv_last``
(1x1, 2*hidden -> hidden) is never used by OpenSTL's forward and is left out (3 x 32,768 =
98,304 parameters, so OpenSTL reports 38,043,648 at the defaults). The peephole weights start
at zero, as in OpenSTL, and tie the model to one frame size even without layer norm.

Parameters at the defaults (64x64x1 frames, patch 4 -> C = 16 channels at 16x16, hidden 128,
4 layers, filter 5): the ST-LSTM layer 4,077,568 (see models/predrnn.py). A PeepholeConvLSTM:
conv_x + conv_h 2 * 128*4*128*25 = 3,276,800, peepholes 3*128*16*16 = 98,304 (3,375,104).
A MIM block: conv_x 128*4*128*25 = 1,638,400, conv_h 128*3*128*25 = 1,228,800, conv_m 1,638,400,
conv_mem 256*128 = 32,768, its MIM-S 3,375,104 (7,913,472). Three blocks, three MIM-Ns, readout
128*16 = 2,048. Total 4,077,568 + 3 * (7,913,472 + 3,375,104) + 2,048 = 37,945,344.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._cells import CellStack, fusable, gate_conv, patched_config, summed_gates
from .fused import FastPathSwitch
from .patch import Patched
from .predrnn import SpatioTemporalLSTMCell
from .registry import register_model


class PeepholeConvLSTM(FastPathSwitch, nn.Module):
    """OpenSTL's ``MIMN`` and ``MIMBlock.MIMS``: a ConvLSTM with per-position peepholes.
    ``fused_convs``: conv_x(x) + conv_h(h) as one convolution (models/_cells.py ``summed_gates``)."""

    fast_paths = ("fused_convs",)
    GATES = ((0, 1, 2, 3), (0, 1, 2, 3))

    def __init__(
        self, hidden: int, filter_size: int, hw: tuple[int, int], norm_hw: tuple[int, int] | None,
        forget_bias: float = 1.0,
    ):
        super().__init__()
        self.hidden = hidden
        self.forget_bias = forget_bias
        self.conv_x = gate_conv(hidden, 4 * hidden, filter_size, norm_hw)
        self.conv_h = gate_conv(hidden, 4 * hidden, filter_size, norm_hw)
        self.peep_if = nn.Parameter(torch.zeros(2 * hidden, *hw))
        self.peep_o = nn.Parameter(torch.zeros(hidden, *hw))

    def gate_terms(self, x: torch.Tensor, h: torch.Tensor):
        """(i, g, f, o): conv_x's chunks plus conv_h's."""
        if self.fused_convs:
            return summed_gates([self.conv_x, self.conv_h], [x, h], self.GATES, self.hidden)
        i_x, g_x, f_x, o_x = torch.split(self.conv_x(x), self.hidden, dim=1)
        i_h, g_h, f_h, o_h = torch.split(self.conv_h(h), self.hidden, dim=1)
        return i_x + i_h, g_x + g_h, f_x + f_h, o_x + o_h

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        i, g, f, o = self.gate_terms(x, h)
        w_i, w_f = torch.split(self.peep_if, self.hidden, dim=0)
        c = (torch.sigmoid(f + w_f * c + self.forget_bias) * c
             + torch.sigmoid(i + w_i * c) * torch.tanh(g))
        return torch.sigmoid(o + self.peep_o * c) * torch.tanh(c), c


class MIMBlock(FastPathSwitch, nn.Module):
    """``fused_convs`` (without layer norm): conv_x(x), conv_h(h), conv_m(m) as one convolution
    of [x, h, m]; conv_x's i and g chunks are placed twice (they enter two sums each)."""

    # output chunks (f_x+f_s, i_x+i_s, g_x+g_s, i_x+i_t, g_x+g_t, o_x+o_t+o_s)
    GATES = (((1, 3), (2, 4), 0, 5), (3, 4, 5), (1, 2, 0, 5))

    def __init__(
        self, hidden: int, filter_size: int, hw: tuple[int, int], norm_hw: tuple[int, int] | None,
        forget_bias: float = 1.0,
    ):
        super().__init__()
        self.hidden = hidden
        self.forget_bias = forget_bias
        self.conv_x = gate_conv(hidden, 4 * hidden, filter_size, norm_hw)
        self.conv_h = gate_conv(hidden, 3 * hidden, filter_size, norm_hw)
        self.conv_m = gate_conv(hidden, 4 * hidden, filter_size, norm_hw)
        self.stationary = PeepholeConvLSTM(hidden, filter_size, hw, norm_hw, forget_bias)
        self.conv_mem = nn.Conv2d(2 * hidden, hidden, kernel_size=1, bias=False)
        self.fast_paths = fusable([self.conv_x, self.conv_h, self.conv_m])

    def gate_terms(self, x, h, m):
        """The six sums of the gate convolutions' chunks (``GATES``)."""
        if self.fused_convs:
            return summed_gates([self.conv_x, self.conv_h, self.conv_m], [x, h, m], self.GATES,
                                self.hidden)
        i_x, g_x, f_x, o_x = torch.split(self.conv_x(x), self.hidden, dim=1)
        i_t, g_t, o_t = torch.split(self.conv_h(h), self.hidden, dim=1)
        i_s, g_s, f_s, o_s = torch.split(self.conv_m(m), self.hidden, dim=1)
        return f_x + f_s, i_x + i_s, g_x + g_s, i_x + i_t, g_x + g_t, o_x + o_t + o_s

    def forward(self, x, n_h, h, c, m, s):
        f_m, i_m, g_m, i_c, g_c, o = self.gate_terms(x, h, m)
        m = torch.sigmoid(f_m + self.forget_bias) * m + torch.sigmoid(i_m) * torch.tanh(g_m)
        kept, s = self.stationary(n_h, c, s)
        c = kept + torch.sigmoid(i_c) * torch.tanh(g_c)
        o = torch.sigmoid(o)
        return o * torch.tanh(self.conv_mem(torch.cat([c, m], dim=1))), c, m, s


class MIM(CellStack):
    """State: (h's, c's, m, MIM-S cells s, MIM-N hiddens, MIM-N cells); the last three per block."""

    def __init__(
        self, frame_channels: int, hidden: int, layers: int, filter_size: int,
        hw: tuple[int, int], layer_norm: bool = False,
    ):
        if layers < 2:
            raise ValueError(f"MIM needs layers >= 2 (an ST-LSTM, then MIM blocks); got {layers}")
        norm_hw = hw if layer_norm else None
        cells = [SpatioTemporalLSTMCell(frame_channels, hidden, filter_size, norm_hw)]
        cells += [MIMBlock(hidden, filter_size, hw, norm_hw) for _ in range(layers - 1)]
        super().__init__(cells, frame_channels, hidden, norm_hw)
        self.hw = tuple(hw)
        self.nonstationary = nn.ModuleList(
            PeepholeConvLSTM(hidden, filter_size, hw, norm_hw) for _ in range(layers - 1)
        )

    def zeros(self, frame: torch.Tensor) -> torch.Tensor:
        if tuple(frame.shape[-2:]) != self.hw:
            raise ValueError(
                f"MIM was built for {self.hw[0]}x{self.hw[1]} states (its peephole weights are "
                f"per position); got frames of {frame.shape[-2]}x{frame.shape[-1]}"
            )
        return super().zeros(frame)

    def step(self, frame: torch.Tensor, state):
        first = state is None
        if first:
            zero, n = self.zeros(frame), len(self.cells)
            state = ((zero,) * n, (zero,) * n, zero) + ((zero,) * (n - 1),) * 3
        h_prev, c_prev, m, s_prev, nh_prev, nc_prev = state
        x, c, m = self.cells[0](frame, h_prev[0], c_prev[0], m)
        hs, cs, ss, nhs, ncs = [x], [c], [], [], []
        diff = x - h_prev[0]
        for j, block in enumerate(self.cells[1:]):
            n_h, n_c = nh_prev[j], nc_prev[j]
            if not first:  # both references skip MIM-N at t = 0 (no difference yet)
                n_h, n_c = self.nonstationary[j](diff, n_h, n_c)
            diff = n_h
            x, c, m, s = block(x, n_h, h_prev[j + 1], c_prev[j + 1], m, s_prev[j])
            hs.append(x)
            cs.append(c)
            ss.append(s)
            nhs.append(n_h)
            ncs.append(n_c)
        return self.readout(x), (tuple(hs), tuple(cs), m, tuple(ss), tuple(nhs), tuple(ncs))


@register_model(
    "mim",
    family="PredRNN",
    paper="Wang et al. 2019, Memory In Memory: A Predictive Neural Network for Learning "
    "Higher-Order Non-Stationarity from Spatiotemporal Dynamics, CVPR",
    preset_args={"smoke": {"hidden": 8, "layers": 2}},
    width_arg="hidden",
)
def mim(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 4,
    hidden: int = 128,
    layers: int = 4,
    filter_size: int = 5,
    layer_norm: bool = False,
) -> nn.Module:
    """MIM at OpenSTL's Moving MNIST setting by default (37,945,344 parameters).

    ``layers`` must be >= 2. The per-position peephole weights tie the model to frames of
    ``height`` x ``width``; ``layer_norm=True`` adds LayerNorm after every k x k convolution over
    [C_out, height / patch, width / patch].
    """
    c, h, w = patched_config(
        channels, height, width, patch, hidden, layers, filter_size, layer_norm
    )
    return Patched(MIM(c, hidden, layers, filter_size, (h, w), bool(layer_norm)), patch)
