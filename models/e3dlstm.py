"""E3D-LSTM: LSTMs whose states are 3-D (a window of frames) and whose cell recalls its own past.

Wang et al. 2019, "Eidetic 3D LSTM: A Model for Video Prediction and Beyond", ICLR. Reference
code: the authors' google/e3d_lstm (``src/layers/rnn_cell.py``, ``src/models/eidetic_3d_lstm_net.py``)
and OpenSTL (chengtan9907/OpenSTL, ``openstl/modules/e3dlstm_modules.py``,
``openstl/models/e3dlstm_model.py``), whose layout and parameter count this file keeps.

At step t the bottom cell reads the last ``window`` frames stacked along a depth axis (zeros
before the first frame), so every state is ``[B, hidden, window, H, W]``. All convolutions are
3-D with kernel ``(temporal_filter, filter_size, filter_size)``, no bias, 'same' padding as
TensorFlow pads it (the extra temporal zero goes after the window). One cell step, input x,
this layer's (h, c), the memory m arriving from the layer below and the layer's past cells:

    i, g, r, o_x, i', g', f' = split(conv_x(x), 7);  i_h, g_h, r_h, o_h = split(conv_h(h), 4)
    i_m, f_m, g_m, m_m = split(conv_m(m), 4)
    c' = LN(c + RECALL(sigmoid(r + r_h), C_hist)) + sigmoid(i + i_h) * tanh(g + g_h)
    m' = sigmoid(f' + f_m + 1) * tanh(m_m) + sigmoid(i' + i_m) * tanh(g' + g_m)
    o  = tanh(o_x + o_h + conv_oc(c') + conv_om(m'))
    h' = sigmoid(o) * tanh(conv_mem([c', m']))            (conv_mem: 1x1x1, 2*hidden -> hidden)

RECALL(q, C) = softmax(q C^T) C, with one token per (depth, y, x) position and ``hidden``
features, no 1/sqrt(d) scale. C_hist is the last ``recall`` of the cell states this layer has
held, from the zero initial state to c (= C_{t-1}), concatenated along depth; all of them
(t + 1 at step t) when ``recall`` is None, as both reference codes keep them. LN normalises over
[hidden, window, H, W] with elementwise affine weights (OpenSTL's ``_norm_c_t``). The top h
is read out by a (window, 1, 1) convolution with stride window.

Where this file departs from the reference code, on purpose:
- The memory m zig-zags as the paper draws it: m' leaves layer k for layer k + 1, and the top
  layer's m' enters the bottom layer at the next step. Both reference codes return the memory
  they were given (google/e3d_lstm issue #29), so there m is zero forever; ``memory_flow=False``
  reproduces that (conv_m then multiplies zeros and its weights never learn).
- OpenSTL concatenates past cells along channels, not depth, and reshapes the [B, C, D, H, W]
  query to tokens without moving C last, which mixes channels and positions; it also emulates
  'same' padding by nearest-upsampling a depth-1 'valid' output, which makes both depth slices
  equal. The attention and padding here are the authors' TensorFlow ones; computing both depth
  slices costs 545 GMACs per 10 -> 10 sequence at the defaults against the 298.9 G OpenSTL
  reports. The TensorFlow code's convolutions have biases and its LN per-channel affine weights;
  the bias-free convolutions and [hidden, window, H, W] LN weights here are OpenSTL's.
  ``openstl_compat=True`` switches to OpenSTL's tokens and padding: with ``memory_flow=False``
  too, the model reproduces OpenSTL's outputs to float32 rounding (tests/test_golden_openstl.py).
- Equations as the reference code has them, not the paper: o goes through tanh and then
  sigmoid; m' gates tanh(conv(m)), not m. OpenSTL's ``layer_norm`` option (off in its Moving
  MNIST config) is not offered; the cell LN is always on, as in both codes.

Parameters at the defaults (64x64x1 frames, patch 4 -> C = 16 channels, hidden 128, 4 layers,
kernel 2x5x5 = 50 taps, window 2, 16x16 states), per cell: conv_h and conv_m 128*512*50 =
3,276,800 each, conv_oc and conv_om 128*128*50 = 819,200 each, conv_mem 256*128 = 32,768,
LN 2 * 128*2*16*16 = 131,072, plus conv_x 16*896*50 = 716,800 in cell 0 (cell total 9,072,640)
or 128*896*50 = 5,734,400 in cells 1-3 (14,090,240 each); readout 128*16*2 = 4,096.
Total 9,072,640 + 3 * 14,090,240 + 4,096 = 51,347,456, the same as OpenSTL's model (it has no
parameters the forward pass skips).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._cells import check_positive
from .base import RecurrentPredictor
from .fused import FastPathSwitch, MapNorm, summed_kernel
from .patch import Patched, patched_shape
from .registry import register_model


class SameConv3d(nn.Conv3d):
    """Bias-free 3-D convolution keeping (D, H, W), padded like TensorFlow's 'same'; or, with
    ``openstl``, OpenSTL's emulation: no depth padding, then nearest upsampling to depth D."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int], openstl: bool = False):
        super().__init__(c_in, c_out, kernel, padding=(0, kernel[1] // 2, kernel[2] // 2), bias=False)
        before = (kernel[0] - 1) // 2
        self.depth_pad = (0, 0, 0, 0, before, kernel[0] - 1 - before)
        self.openstl = openstl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convolve(x, self.weight)

    def convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """This convolution's padding (and OpenSTL's upsampling) with another ``weight``."""
        if self.openstl:
            out = F.conv3d(x, weight, padding=self.padding)
            return F.interpolate(out, size=x.shape[-3:], mode="nearest")
        return F.conv3d(F.pad(x, self.depth_pad), weight, padding=self.padding)


def recall(query: torch.Tensor, history: torch.Tensor, openstl: bool = False) -> torch.Tensor:
    """softmax(q k^T) v over positions: query ``[B, C, D, H, W]``, history ``[B, C, N, H, W]``.

    ``openstl``: OpenSTL's tokens instead, each state's [C, D, H, W] memory cut into runs of C
    values (a reshape without moving C last), the history's states one after another.
    """
    if openstl:
        b, c, d = query.shape[:3]
        q = query.reshape(b, 1, -1, c)
        kv = history.unflatten(2, (-1, d)).transpose(1, 2).reshape(b, 1, -1, c)
        return F.scaled_dot_product_attention(q, kv, kv, scale=1.0).reshape(query.shape)
    q = query.flatten(2).transpose(1, 2).contiguous()[:, None]  # [B, 1 head, D*H*W, C]
    kv = history.flatten(2).transpose(1, 2).contiguous()[:, None]  # [B, 1 head, N*H*W, C]
    # Contiguous 4-D inputs reach the fused (flash) kernels, on CPU too: no score matrix stored.
    out = F.scaled_dot_product_attention(q, kv, kv, scale=1.0)[:, 0]
    return out.transpose(1, 2).reshape(query.shape)


class EideticCell(FastPathSwitch, nn.Module):
    """``fused_convs``: conv_x(x), conv_h(h), conv_m(m) as one convolution of [x, h, m] whose
    kernel places each chunk at the sum it enters (models.fused.summed_kernel), and
    conv_oc(c) + conv_om(m) as one convolution of [c, m]."""

    fast_paths = ("fused_convs",)
    # output chunks (i, g, r, o, i', g', f', m_m): conv_x's seven, conv_h's i g r o,
    # conv_m's i f g m
    GATES = ((0, 1, 2, 3, 4, 5, 6), (0, 1, 2, 3), (4, 6, 5, 7))

    def __init__(self, c_in: int, hidden: int, kernel: tuple[int, int, int], norm_shape: tuple,
                 openstl: bool = False):
        super().__init__()
        self.hidden, self.openstl = hidden, openstl
        self.conv_x = SameConv3d(c_in, 7 * hidden, kernel, openstl)
        self.conv_h = SameConv3d(hidden, 4 * hidden, kernel, openstl)
        self.conv_m = SameConv3d(hidden, 4 * hidden, kernel, openstl)
        self.conv_oc = SameConv3d(hidden, hidden, kernel, openstl)
        self.conv_om = SameConv3d(hidden, hidden, kernel, openstl)
        self.conv_mem = nn.Conv3d(2 * hidden, hidden, kernel_size=1, bias=False)
        self.norm_c = MapNorm(norm_shape)

    def gate_terms(self, x, h, m):
        """The summed pre-activations (i, g, r, o, i', g', f', m_m)."""
        if self.fused_convs:
            convs = [self.conv_x, self.conv_h, self.conv_m]
            weight = summed_kernel([c.weight for c in convs], self.GATES, self.hidden)
            return self.conv_x.convolve(torch.cat([x, h, m], 1), weight).split(self.hidden, 1)
        i_x, g_x, r_x, o_x, i_xm, g_xm, f_xm = torch.split(self.conv_x(x), self.hidden, dim=1)
        i_h, g_h, r_h, o_h = torch.split(self.conv_h(h), self.hidden, dim=1)
        i_m, f_m, g_m, m_m = torch.split(self.conv_m(m), self.hidden, dim=1)
        return i_x + i_h, g_x + g_h, r_x + r_h, o_x + o_h, i_xm + i_m, g_xm + g_m, f_xm + f_m, m_m

    def output_terms(self, c, m):
        """conv_oc(c) + conv_om(m)."""
        if self.fused_convs:
            weight = torch.cat([self.conv_oc.weight, self.conv_om.weight], dim=1)
            return self.conv_oc.convolve(torch.cat([c, m], 1), weight)
        return self.conv_oc(c) + self.conv_om(m)

    def forward(self, x, h, c, m, history):
        i, g, r, o, i_m, g_m, f_m, m_m = self.gate_terms(x, h, m)
        c = (self.norm_c(c + recall(torch.sigmoid(r), history, self.openstl))
             + torch.sigmoid(i) * torch.tanh(g))
        m = torch.sigmoid(f_m + 1.0) * torch.tanh(m_m) + torch.sigmoid(i_m) * torch.tanh(g_m)
        o = torch.tanh(o + self.output_terms(c, m))
        return torch.sigmoid(o) * torch.tanh(self.conv_mem(torch.cat([c, m], dim=1))), c, m


class E3DLSTM(RecurrentPredictor):
    """State: (last window - 1 frames, h per layer, c per layer, m, past cells per layer)."""

    def __init__(self, channels: int, hidden: int, layers: int, kernel: tuple[int, int, int],
                 window: int, recall: int | None, memory_flow: bool, hw: tuple[int, int],
                 openstl_compat: bool = False):
        super().__init__()
        norm_shape = (hidden, window, *hw)
        self.cells = nn.ModuleList(
            EideticCell(channels if i == 0 else hidden, hidden, kernel, norm_shape, openstl_compat)
            for i in range(layers)
        )
        self.readout = nn.Conv3d(hidden, channels, (window, 1, 1), stride=(window, 1, 1), bias=False)
        self.hidden, self.window, self.recall, self.memory_flow = hidden, window, recall, memory_flow

    def step(self, frame: torch.Tensor, state):
        if state is None:
            b, _, h, w = frame.shape
            zero = frame.new_zeros(b, self.hidden, self.window, h, w)
            n = len(self.cells)
            state = ((torch.zeros_like(frame),) * (self.window - 1), (zero,) * n, (zero,) * n,
                     zero, (None,) * n)
        past, hs, cs, m, histories = state
        frames = (*past, frame)
        x = torch.stack(frames, dim=2)  # [B, C, window, H, W]
        new_h, new_c, new_hist = [], [], []
        for cell, h, c, hist in zip(self.cells, hs, cs, histories, strict=True):
            hist = c if hist is None else torch.cat([hist, c], dim=2)
            if self.recall is not None:
                hist = hist[:, :, -self.recall * self.window :]
            x, c, m_new = cell(x, h, c, m, hist)
            m = m_new if self.memory_flow else m
            new_h.append(x)
            new_c.append(c)
            new_hist.append(hist)
        next_frame = self.readout(x).squeeze(2)
        return next_frame, (frames[1:], tuple(new_h), tuple(new_c), m, tuple(new_hist))


@register_model(
    "e3dlstm",
    family="E3D-LSTM",
    paper="Wang et al. 2019, Eidetic 3D LSTM: A Model for Video Prediction and Beyond, ICLR",
    # quick: the generic 2 x 32 costs 21.6 GMACs per 10 -> 10 sequence (2x5x5 convs over a
    # 2-deep window, recall over all past cells); 1 x 16 costs 3.7, as PredRNN's quick model,
    # though its recall makes a batch-8 training step ~2x PredRNN's in CPU time (1.8 s vs 0.84).
    preset_args={"quick": {"hidden": 16, "layers": 1}},
    width_arg="hidden",
)
def e3dlstm(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 4,
    hidden: int = 128,
    layers: int = 4,
    filter_size: int = 5,
    temporal_filter: int = 2,
    window: int = 2,
    recall: int | None = None,
    memory_flow: bool = True,
    openstl_compat: bool = False,
) -> nn.Module:
    """E3D-LSTM at OpenSTL's Moving MNIST setting by default (51,347,456 parameters).

    ``recall``: how many past cell states the recall attends over (None: all of them, as the
    reference code). ``memory_flow=False``: keep the memory at zero, as the reference code does.
    ``openstl_compat=True``: OpenSTL's recall tokens and depth padding (see the module docstring);
    with ``memory_flow=False`` the model then computes what OpenSTL's does.
    The cell LayerNorm ties the model to ``height / patch`` x ``width / patch`` states.
    """
    for name, value in [
        ("channels", channels), ("height", height), ("width", width), ("patch", patch),
        ("hidden", hidden), ("layers", layers), ("filter_size", filter_size),
        ("temporal_filter", temporal_filter), ("window", window),
    ]:
        check_positive(name, value)
    if filter_size % 2 == 0:
        raise ValueError(f"filter_size must be odd so 'same' padding keeps the size; got {filter_size}")
    if recall is not None:
        check_positive("recall", recall)
    if memory_flow not in (True, False):
        raise ValueError(f"memory_flow must be True or False; got {memory_flow!r}")
    if openstl_compat not in (True, False):
        raise ValueError(f"openstl_compat must be True or False; got {openstl_compat!r}")
    c, h, w = patched_shape(channels, height, width, patch)
    kernel = (temporal_filter, filter_size, filter_size)
    core = E3DLSTM(c, hidden, layers, kernel, window, recall, bool(memory_flow), (h, w),
                   bool(openstl_compat))
    return Patched(core, patch)
