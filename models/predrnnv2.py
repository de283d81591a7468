"""PredRNN-V2: PredRNN's ST-LSTM with a memory-decoupling loss (and, in the loop, reverse
scheduled sampling: ``TrainConfig(sampling="reverse")``, see bench/train/sampling.py).

Wang et al. 2022, "PredRNN: A Recurrent Neural Network for Spatiotemporal Predictive Learning",
TPAMI. Reference code: OpenSTL (chengtan9907/OpenSTL),
``openstl/models/predrnnv2_model.py`` at 9da43f4 (``PredRNNv2_Model``) and
``modules/predrnnv2_modules.py`` at 1312316 (``SpatioTemporalLSTMCellv2``), which match the
authors' thuml/predrnn-pytorch ``core/models/predrnn_v2.py``.

The cell is PredRNN's ST-LSTM (models/predrnn.py) exposing its two memory increments,
delta_c = sigmoid(i + i_h) * tanh(g + g_h) (so c' = sigmoid(f + f_h + 1) * c + delta_c) and
delta_m = sigmoid(i' + i_m) * tanh(g' + g_m). One 1x1 convolution without bias, the adapter
(hidden -> hidden), is shared by all layers. For every step t and layer l:

    a = normalize(adapter(delta_c).flatten(2), dim=2);  b = the same for delta_m
    L(t, l) = mean over (batch, channel) of |cosine_similarity(a, b, dim=2)|

(each channel's map is one vector), and the auxiliary loss is
``decouple_beta * mean over (t, l) of L(t, l)``, with decouple_beta = 0.1 (OpenSTL's config).
The references add it to a per-pixel-mean MSE; the harness adds it to whatever loss the loop
uses, so its relative weight depends on that loss. It is computed in training mode only (OpenSTL
computes it only when asked for a loss); in eval mode ``aux_loss`` is None.

Parameters at the defaults (64x64x1 frames, patch 4 -> C = 16 channels, hidden 128, 4 layers,
filter 5): PredRNN's 23,838,720 (derived in models/predrnn.py) plus the adapter 128*128 = 16,384:
23,855,104, the count OpenSTL reports (no unused parameters).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._cells import CellStack, patched_config
from .patch import Patched
from .predrnn import SpatioTemporalLSTMCell
from .registry import register_model


class DecoupledSTLSTMCell(SpatioTemporalLSTMCell):
    """PredRNN's ST-LSTM (same weights, same outputs), also returning delta_c and delta_m."""

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, m: torch.Tensor):
        i, f, g, i_m, f_m, g_m, o = self.gate_terms(x, h, m)
        delta_c = torch.sigmoid(i) * torch.tanh(g)
        delta_m = torch.sigmoid(i_m) * torch.tanh(g_m)
        c = torch.sigmoid(f + self.forget_bias) * c + delta_c
        m = torch.sigmoid(f_m + self.forget_bias) * m + delta_m
        mem = torch.cat([c, m], dim=1)
        o = torch.sigmoid(o + self.conv_o(mem))
        return o * torch.tanh(self.conv_mem(mem)), c, m, delta_c, delta_m


class PredRNNv2(CellStack):
    """PredRNN with decoupled memories; the state is (h's, c's, m, (delta_c, delta_m) per layer)."""

    def __init__(
        self, frame_channels: int, hidden: int, layers: int, filter_size: int,
        norm_hw: tuple[int, int] | None = None, decouple_beta: float = 0.1,
    ):
        cells = [
            DecoupledSTLSTMCell(frame_channels if i == 0 else hidden, hidden, filter_size, norm_hw)
            for i in range(layers)
        ]
        super().__init__(cells, frame_channels, hidden, norm_hw)
        self.adapter = nn.Conv2d(hidden, hidden, kernel_size=1, bias=False)
        self.decouple_beta = decouple_beta

    def step(self, frame: torch.Tensor, state):
        if state is None:
            zero = self.zeros(frame)
            state = ((zero,) * len(self.cells), (zero,) * len(self.cells), zero, None)
        h_prev, c_prev, m, _ = state
        x, hs, cs, deltas = frame, [], [], []
        for cell, h, c in zip(self.cells, h_prev, c_prev, strict=True):
            x, c, m, delta_c, delta_m = cell(x, h, c, m)
            hs.append(x)
            cs.append(c)
            deltas.append((delta_c, delta_m))
        return self.readout(x), (tuple(hs), tuple(cs), m, tuple(deltas) if self.training else None)

    def decoupling(self, delta_c: torch.Tensor, delta_m: torch.Tensor) -> torch.Tensor:
        """Mean over batch and channels of |cos| between the adapted increments of one layer."""
        a = F.normalize(self.adapter(delta_c).flatten(2), dim=2)
        b = F.normalize(self.adapter(delta_m).flatten(2), dim=2)
        return torch.cosine_similarity(a, b, dim=2).abs().mean()

    def auxiliary_loss(self, states) -> torch.Tensor | None:
        if not self.training:
            return None
        terms = [self.decoupling(dc, dm) for state in states for dc, dm in state[3]]
        return self.decouple_beta * torch.stack(terms).mean()


@register_model(
    "predrnnv2",
    family="PredRNN",
    paper="Wang et al. 2022, PredRNN: A Recurrent Neural Network for Spatiotemporal Predictive "
    "Learning, TPAMI",
    width_arg="hidden",
)
def predrnnv2(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 4,
    hidden: int = 128,
    layers: int = 4,
    filter_size: int = 5,
    layer_norm: bool = False,
    decouple_beta: float = 0.1,
) -> nn.Module:
    """PredRNN-V2 at OpenSTL's Moving MNIST setting by default (23,855,104 parameters).

    ``decouple_beta`` weights the decoupling loss (>= 0; 0 turns it off but keeps the adapter).
    ``layer_norm=True`` normalises as PredRNN does. Train it with the loop's
    ``sampling="reverse"`` to follow the paper's reverse scheduled sampling.
    """
    c, h, w = patched_config(
        channels, height, width, patch, hidden, layers, filter_size, layer_norm
    )
    if isinstance(decouple_beta, bool) or not isinstance(decouple_beta, (int, float)) or not (
        decouple_beta >= 0 and decouple_beta != float("inf")
    ):
        raise ValueError(f"decouple_beta must be a finite number >= 0; got {decouple_beta!r}")
    core = PredRNNv2(c, hidden, layers, filter_size, (h, w) if layer_norm else None,
                     float(decouple_beta))
    return Patched(core, patch)
