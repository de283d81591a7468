"""SA-ConvLSTM: a ConvLSTM whose hidden state passes through a self-attention memory (SAM).

Lin et al. 2020, "Self-Attention ConvLSTM for Spatiotemporal Prediction", AAAI. The authors
released no code; this file follows the paper's equations (section "Self-Attention Memory
Module"), written independently of the community ports (e.g. tsugumi-sys/SA-ConvLSTM-Pytorch,
hyona-yu/SA-convlstm), whose readings of the unstated details it shares where noted.

One step of a layer, input x, state (Ĥ, C, M) of that layer (all zero at the start):

    i, f, g, o = split(W * [x, Ĥ] + b, 4)              (k x k conv with bias: the ConvLSTM)
    C' = sigmoid(f) C + sigmoid(i) tanh(g);   H = sigmoid(o) tanh(C')
    SAM(H, M), with 1x1 convs (bias) Q = W_q H, K_h = W_k H, V_h = W_v H, K_m = W_km M, V_m = W_vm M
    (Q, K: a channels, V: hidden channels) and N = H' x W' positions:
    Z_h[:, i] = sum_j softmax_j(Q[:, i] . K_h[:, j]) V_h[:, j]      (every position attends to all N)
    Z_m[:, i] = sum_j softmax_j(Q[:, i] . K_m[:, j]) V_m[:, j]
    Z = W_z [Z_h; Z_m]                                   (1x1 conv, 2 * hidden -> 2 * hidden)
    i', g', o' = split(W_m [Z; H] + b_m, 3)              (1x1 conv: W_{m;z*} Z + W_{m;h*} H + b)
    M' = (1 - sigmoid(i')) M + sigmoid(i') tanh(g');     Ĥ' = sigmoid(o') M'

Ĥ' is the layer's output (the next layer's input) and its recurrent hidden state; each layer has
its own C and M. A bias-free 1x1 conv reads the top Ĥ' out as the next (patched) frame, as in the
other recurrent baselines. Unstated in the paper and chosen here: no 1/sqrt(a) scaling of the
scores (the paper's e = Q^T K has none); Z keeps 2 * hidden channels (as the public ports do);
no peephole terms.

Defaults: 4 layers x 64 hidden, as the paper's Moving MNIST setting (4 layers of 64 hidden
states, as I read it; I could not re-check the paper's text here), patch 4 on 64x64 frames
(16 channels at 16x16, N = 256 positions) as the other baselines. Not verified from the paper
and chosen for the benchmark: filter 5 (OpenSTL's filter for its recurrent baselines) and
a = 16 query/key channels.

Parameters at the defaults (C = 16 patched channels, hidden 64, a = 16): ConvLSTM conv of layer
0 (16 + 64) * 256 * 25 + 256 = 512,256, of layers 1-3 128 * 256 * 25 + 256 = 819,456 each;
SAM per layer: Q, K_h, K_m 3 * (64 * 16 + 16) = 3,120, V_h, V_m 2 * (64 * 64 + 64) = 8,320,
W_z 128 * 128 + 128 = 16,512, W_m 192 * 192 + 192 = 37,056, so 65,008; readout 64 * 16 = 1,024.
Total 512,256 + 3 * 819,456 + 4 * 65,008 + 1,024 = 3,231,680.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._cells import CellStack, check_positive, patched_config
from .fused import FastPathSwitch
from .patch import Patched
from .registry import register_model


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """query, key ``[B, a, N]``, value ``[B, C, N]`` -> ``[B, C, N]``: softmax over all N keys."""
    weights = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # [B, N queries, N keys]
    return value @ weights.transpose(1, 2)


def merged_pointwise(convs: list[nn.Conv2d], x: torch.Tensor) -> list[torch.Tensor]:
    """``[conv(x) for conv in convs]`` (1x1 convolutions with bias) as one convolution."""
    weight = torch.cat([c.weight for c in convs])
    out = F.conv2d(x, weight, torch.cat([c.bias for c in convs]))
    return list(out.split([c.out_channels for c in convs], dim=1))


class SelfAttentionMemory(FastPathSwitch, nn.Module):
    """``fused_convs``: the three 1x1 convolutions of H (Q, K_h, V_h) as one, and the two of M
    (K_m, V_m) as one. The ConvLSTM part is one convolution of [x, Ĥ] already; W_z and W_m
    read what the attention returns, so they stay apart."""

    fast_paths = ("fused_convs",)

    def __init__(self, hidden: int, attn_channels: int):
        super().__init__()
        self.query = nn.Conv2d(hidden, attn_channels, 1)
        self.key_h = nn.Conv2d(hidden, attn_channels, 1)
        self.value_h = nn.Conv2d(hidden, hidden, 1)
        self.key_m = nn.Conv2d(hidden, attn_channels, 1)
        self.value_m = nn.Conv2d(hidden, hidden, 1)
        self.fuse = nn.Conv2d(2 * hidden, 2 * hidden, 1)
        self.gates = nn.Conv2d(3 * hidden, 3 * hidden, 1)

    def projections(self, h: torch.Tensor, m: torch.Tensor) -> list[torch.Tensor]:
        """Q, K_h, V_h, K_m, V_m, each flattened to ``[B, channels, N]``."""
        if self.fused_convs:
            out = (merged_pointwise([self.query, self.key_h, self.value_h], h)
                   + merged_pointwise([self.key_m, self.value_m], m))
        else:
            out = [self.query(h), self.key_h(h), self.value_h(h), self.key_m(m), self.value_m(m)]
        return [p.flatten(2) for p in out]

    def forward(self, h: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k_h, v_h, k_m, v_m = self.projections(h, m)
        z_h = attend(q, k_h, v_h)
        z_m = attend(q, k_m, v_m)
        z = self.fuse(torch.cat([z_h, z_m], dim=1).view(h.shape[0], -1, *h.shape[2:]))
        i, g, o = torch.chunk(self.gates(torch.cat([z, h], dim=1)), 3, dim=1)
        i = torch.sigmoid(i)
        m = (1 - i) * m + i * torch.tanh(g)
        return torch.sigmoid(o) * m, m


class SAConvLSTMCell(nn.Module):
    def __init__(self, in_channels: int, hidden: int, filter_size: int, attn_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels + hidden, 4 * hidden, filter_size, padding=filter_size // 2)
        self.sam = SelfAttentionMemory(hidden, attn_channels)

    def forward(self, x, h, c, m):
        i, f, g, o = torch.chunk(self.conv(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h, m = self.sam(torch.sigmoid(o) * torch.tanh(c), m)
        return h, c, m


class SAConvLSTM(CellStack):
    """``layers`` SA-ConvLSTM cells; the state is (Ĥ per layer, C per layer, M per layer)."""

    def __init__(self, frame_channels: int, hidden: int, layers: int, filter_size: int,
                 attn_channels: int):
        cells = [
            SAConvLSTMCell(frame_channels if i == 0 else hidden, hidden, filter_size, attn_channels)
            for i in range(layers)
        ]
        super().__init__(cells, frame_channels, hidden, None)

    def step(self, frame: torch.Tensor, state):
        if state is None:
            state = ((self.zeros(frame),) * len(self.cells),) * 3
        x, new = frame, ([], [], [])
        for cell, h, c, m in zip(self.cells, *state, strict=True):
            x, c, m = cell(x, h, c, m)
            for store, value in zip(new, (x, c, m), strict=True):
                store.append(value)
        return self.readout(x), tuple(tuple(s) for s in new)


@register_model(
    "saconvlstm",
    family="SA-ConvLSTM",
    paper="Lin et al. 2020, Self-Attention ConvLSTM for Spatiotemporal Prediction, AAAI",
    preset_args={
        "smoke": {"hidden": 8, "layers": 1, "attn_channels": 4},
        "quick": {"hidden": 32, "layers": 2, "attn_channels": 8},
    },
    width_arg="hidden",
)
def saconvlstm(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 4,
    hidden: int = 64,
    layers: int = 4,
    filter_size: int = 5,
    attn_channels: int = 16,
) -> nn.Module:
    """SA-ConvLSTM, 4 layers x 64 hidden, patch 4 (3,231,680 parameters at the defaults)."""
    c, _, _ = patched_config(channels, height, width, patch, hidden, layers, filter_size, False)
    check_positive("attn_channels", attn_channels)
    return Patched(SAConvLSTM(c, hidden, layers, filter_size, attn_channels), patch)
