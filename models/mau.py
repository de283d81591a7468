"""MAU: a recurrent unit that attends over its last tau temporal states to follow motion.

Chang et al. 2021, "MAU: A Motion-Aware Unit for Video Prediction and Beyond", NeurIPS.
Reference code: the authors' ZhengChang467/MAU (``core/layers/MAUCell.py``, ``core/models/MAU.py``)
and OpenSTL (chengtan9907/OpenSTL, ``openstl/modules/mau_modules.py``,
``openstl/models/mau_model.py``), which computes the same; this file keeps their layout.

Each step encodes the frame (1x1 conv to ``hidden`` + LeakyReLU(0.2), then log2(sr_size)
stride-2 3x3 convs + LeakyReLU) into the spatial state S^0_t at 1/sr_size resolution. Layer k
holds its temporal state T^k and its last ``tau`` temporal states T^k_{t-tau..t-1} and inputs
S^{k-1}_{t-tau..t-1} (zeros before the first step). With every conv a k x k 'same' conv with
bias followed by LayerNorm over [C, H, W] (elementwise affine), d = hidden * H * W:

    s = conv_s_next(S^{k-1}_t);  alpha = softmax_j(<S^{k-1}_{t-j}, s> / sqrt(d)),  j = 1..tau
    T_att = sum_j alpha_j T^k_{t-j};   U_f = sigmoid(conv_t_next(T^k_{t-1}))
    T_ami = U_f * T^k_{t-1} + (1 - U_f) * T_att
    t_g, t_t, t_s = split(conv_t(T_ami), 3);  s_g, s_t, s_s = split(conv_s(S^{k-1}_t), 3)
    T^k_t = sigmoid(t_g) * t_t + (1 - sigmoid(t_g)) * s_t
    S^k_t = sigmoid(s_g) * s_s + (1 - sigmoid(s_g)) * t_s

The top S is decoded by log2(sr_size) stride-2 3x3 transposed convs (LeakyReLU between them,
none after the last) and a 1x1 conv to the frame channels (OpenSTL's ``srcnn``); no sigmoid.

Left out: OpenSTL's ``merge`` (1x1, 2*hidden -> hidden) and ``conv_last_sr`` (1x1,
2C -> C), which its forward never uses; the ``cell_mode='residual'`` and ``model_mode='recall'``
variants (the Moving MNIST config uses 'normal' for both).

Parameters at the defaults (64x64x1 frames, patch 1, hidden 64, 4 layers, filter 5, sr_size 4
-> 16x16 states), per cell: conv_t and conv_s 64*192*25 + 192 = 307,392 each, their LayerNorms
2*192*16*16 = 98,304 each, conv_t_next and conv_s_next 64*64*25 + 64 = 102,464 each, their
LayerNorms 2*64*16*16 = 32,768 each: 1,081,856 per cell, 4,327,424 for four. Encoder
(1*64 + 64) + 2 * (64*64*9 + 64) = 73,984; decoder 2 * (64*64*9 + 64) = 73,856; readout
64*1 + 1 = 65. Total 4,475,329; OpenSTL's 4,483,588 adds the unused merge (8,256) and
conv_last_sr (3).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._cells import check_positive
from .base import RecurrentPredictor
from .fused import FastPathSwitch, MapNorm, merged_kernel
from .patch import Patched, patched_shape
from .registry import register_model


def conv_norm(hidden: int, c_out: int, filter_size: int, hw: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(hidden, c_out, filter_size, padding=filter_size // 2),
        MapNorm([c_out, *hw]),
    )


class MAUCell(FastPathSwitch, nn.Module):
    """``fused_convs``: conv_s and conv_s_next (both of S^{k-1}_t) as one convolution, its two
    output parts then normalised by their own LayerNorms. conv_t_next and conv_t cannot be
    fused: conv_t's input T_ami depends on conv_t_next's output."""

    fast_paths = ("fused_convs",)

    def __init__(self, hidden: int, filter_size: int, hw: tuple[int, int]):
        super().__init__()
        self.hidden = hidden
        self.scale = math.sqrt(hidden * hw[0] * hw[1])
        self.conv_t = conv_norm(hidden, 3 * hidden, filter_size, hw)
        self.conv_t_next = conv_norm(hidden, hidden, filter_size, hw)
        self.conv_s = conv_norm(hidden, 3 * hidden, filter_size, hw)
        self.conv_s_next = conv_norm(hidden, hidden, filter_size, hw)

    def attention(self, s: torch.Tensor, t_hist: torch.Tensor, s_hist: torch.Tensor,
                  s_next: torch.Tensor | None = None):
        """T_att and the weights alpha ``[tau, B]``; histories are ``[tau, B, C, H, W]``;
        ``s_next``: conv_s_next(s) when already computed."""
        s_next = self.conv_s_next(s) if s_next is None else s_next
        scores = (s_hist * s_next).flatten(2).sum(-1) / self.scale
        alpha = torch.softmax(scores, dim=0)
        return (alpha[..., None, None, None] * t_hist).sum(0), alpha

    def spatial_convs(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(conv_s(s), conv_s_next(s))."""
        if not self.fused_convs:
            return self.conv_s(s), self.conv_s_next(s)
        convs = [self.conv_s[0], self.conv_s_next[0]]
        weight = merged_kernel([c.weight for c in convs])
        y = F.conv2d(s, weight, torch.cat([c.bias for c in convs]), padding=weight.shape[-1] // 2)
        y_s, y_next = y.split([convs[0].out_channels, convs[1].out_channels], dim=1)
        return self.conv_s[1](y_s), self.conv_s_next[1](y_next)

    def forward(self, t, s, t_hist, s_hist):
        conv_s, s_next = self.spatial_convs(s)
        t_att, _ = self.attention(s, t_hist, s_hist, s_next)
        u_f = torch.sigmoid(self.conv_t_next(t))
        t_ami = u_f * t + (1 - u_f) * t_att
        t_g, t_t, t_s = torch.split(self.conv_t(t_ami), self.hidden, dim=1)
        s_g, s_t, s_s = torch.split(conv_s, self.hidden, dim=1)
        t_gate, s_gate = torch.sigmoid(t_g), torch.sigmoid(s_g)
        return t_gate * t_t + (1 - t_gate) * s_t, s_gate * s_s + (1 - s_gate) * t_s


class MAU(RecurrentPredictor):
    """State: (T per layer, last tau T per layer, last tau input S per layer), oldest first."""

    def __init__(self, channels: int, hidden: int, layers: int, filter_size: int, tau: int,
                 sr_size: int, hw: tuple[int, int]):
        super().__init__()
        n = sr_size.bit_length() - 1  # log2(sr_size)
        self.encoder = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.LeakyReLU(0.2), *[
            m for _ in range(n)
            for m in (nn.Conv2d(hidden, hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.2))
        ])
        up = [nn.ConvTranspose2d(hidden, hidden, 3, stride=2, padding=1, output_padding=1)
              for _ in range(n)]
        self.decoder = nn.Sequential(*[m for u in up[:-1] for m in (u, nn.LeakyReLU(0.2))], *up[-1:])
        self.readout = nn.Conv2d(hidden, channels, 1)
        state_hw = (hw[0] // sr_size, hw[1] // sr_size)
        self.cells = nn.ModuleList(MAUCell(hidden, filter_size, state_hw) for _ in range(layers))
        self.tau = tau

    def step(self, frame: torch.Tensor, state):
        s = self.encoder(frame)
        if state is None:
            zero, n = torch.zeros_like(s), len(self.cells)
            state = ((zero,) * n, ((zero,) * self.tau,) * n, ((zero,) * self.tau,) * n)
        ts, t_hists, s_hists = state
        new_t, new_th, new_sh = [], [], []
        for cell, t, t_hist, s_hist in zip(self.cells, ts, t_hists, s_hists, strict=True):
            t, s_next = cell(t, s, torch.stack(t_hist), torch.stack(s_hist))
            new_t.append(t)
            new_th.append((*t_hist[1:], t))
            new_sh.append((*s_hist[1:], s))
            s = s_next
        return self.readout(self.decoder(s)), (tuple(new_t), tuple(new_th), tuple(new_sh))


@register_model(
    "mau",
    family="MAU",
    paper="Chang et al. 2021, MAU: A Motion-Aware Unit for Video Prediction and Beyond, NeurIPS",
    # The generic scaling suits MAU: smoke (hidden 8, 1 layer, 32x32 frames) runs 8x8 cells
    # at sr_size 4; quick (hidden 32, 2 layers) costs 2.4 GMACs per 10 -> 10 sequence, between
    # ConvLSTM's (1.7) and PredRNN's (3.6) quick models, and trains as fast as PredRNN's.
    width_arg="hidden",
)
def mau(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 1,
    hidden: int = 64,
    layers: int = 4,
    filter_size: int = 5,
    tau: int = 5,
    sr_size: int = 4,
) -> nn.Module:
    """MAU at OpenSTL's Moving MNIST setting by default (4,475,329 parameters).

    The cells run at (height / patch / sr_size) x (width / patch / sr_size), a size their
    LayerNorms are tied to; sr_size must be a power of two dividing both.
    """
    for name, value in [
        ("channels", channels), ("height", height), ("width", width), ("patch", patch),
        ("hidden", hidden), ("layers", layers), ("filter_size", filter_size), ("tau", tau),
        ("sr_size", sr_size),
    ]:
        check_positive(name, value)
    if filter_size % 2 == 0:
        raise ValueError(f"filter_size must be odd so 'same' padding keeps the size; got {filter_size}")
    if sr_size & (sr_size - 1):
        raise ValueError(f"sr_size must be a power of two; got {sr_size}")
    c, h, w = patched_shape(channels, height, width, patch)
    if h % sr_size or w % sr_size:
        raise ValueError(
            f"sr_size {sr_size} does not divide the {h}x{w} frames the model sees (after patch "
            f"{patch}); choose a smaller sr_size or patch"
        )
    return Patched(MAU(c, hidden, layers, filter_size, tau, sr_size, (h, w)), patch)
