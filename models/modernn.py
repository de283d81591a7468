"""MoDeRNN: a ConvLSTM whose input and hidden state first refine each other (Detail Context Block).

Chai, Xu & Yuan 2021, "MoDeRNN: Towards Fine-grained Motion Details for Spatiotemporal
Predictive Learning", arXiv:2110.12978. Reference code: czh-98/MoDeRNN, ``models/MoDeRNN.py``
(commit 4db34f4); this file follows it equation for equation (tests/test_modernn.py checks it
against outputs of that code, tests/fixtures/README.md).

One cell step, input x and state (h, c):

1. Detail Context Block, ``dcb_rounds`` rounds sharing one set of convolutions: odd rounds
   rescale x by ``2 * sigmoid(mean_k LN(conv_k(h)))``, even rounds rescale h by
   ``2 * sigmoid(mean_k LN(conv_k(x)))``, k in ``dcb_kernels``. The rescaled h feeds only the
   gates below; it is never stored, and c is untouched.
2. Gates ``LN(conv_f(x)) + LN(conv_f(h))`` split as (i, f, g, o); the forget gate gets +1.0.
3. ``c' = LN_c(f * c + i * g)``, ``h' = o * tanh(c')``.

Every convolution inside a cell has no bias and is followed by its own LayerNorm over
[C, H, W] with elementwise affine weights, so a cell is tied to one spatial size. At the
authors' Moving MNIST setting (64x64x1 frames, patch 4, hidden 64, 4 layers, filter 3) the
model has 5,867,600 parameters (1,466,368 per cell, embed 1,088, output 1,040); about a third
of them are those LayerNorm affine weights, whose number grows with H*W.

Parameter names map 1:1 to the authors' state dict (``lstm.<l>.<name>``):
``gate_x``/``gate_h`` = ``conv_i2h``/``conv_h2h``; ``x_from_h[j]`` = ``conv{k}{k}_H`` (convs on h,
odd rounds); ``h_from_x[j]`` = ``conv{k}{k}_X`` (convs on x, even rounds); ``norm_c`` =
``norm_cell``; ``.conv``/``.norm`` = ``.0``/``.1``. ``embed``, ``output`` and ``cells`` = ``lstm``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._cells import check_positive as _check_positive
from .base import RecurrentPredictor
from .fused import FastPathSwitch, MapNorm, merged_kernel, norm_groups, paired_conv
from .patch import Patched, patched_shape
from .registry import register_model

FORGET_BIAS = 1.0


class ConvNorm(nn.Module):
    """A k x k 'same' convolution without bias, then a LayerNorm over [C_out, H, W]."""

    def __init__(self, c_in: int, c_out: int, kernel: int, height: int, width: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False)
        self.norm = MapNorm([c_out, height, width])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class MoDeRNNCell(FastPathSwitch, nn.Module):
    """``fused_convs``: each DCB kernel set as one convolution (the kernels zero-padded to the
    largest and concatenated) and one group norm over its outputs; the two gate convolutions
    (of x and of h) as one grouped convolution and one group norm of two groups."""

    fast_paths = ("fused_convs",)

    def __init__(
        self,
        hidden: int,
        height: int,
        width: int,
        filter_size: int = 3,
        dcb_rounds: int = 5,
        dcb_kernels: Sequence[int] = (3, 5, 7),
    ):
        super().__init__()
        self.hidden = hidden
        self.dcb_rounds = dcb_rounds
        shape = (height, width)
        self.x_from_h = nn.ModuleList(ConvNorm(hidden, hidden, k, *shape) for k in dcb_kernels)
        self.h_from_x = nn.ModuleList(ConvNorm(hidden, hidden, k, *shape) for k in dcb_kernels)
        self.gate_x = ConvNorm(hidden, 4 * hidden, filter_size, *shape)
        self.gate_h = ConvNorm(hidden, 4 * hidden, filter_size, *shape)
        self.norm_c = MapNorm([hidden, height, width])

    def _scale(self, convs: nn.ModuleList, source: torch.Tensor) -> torch.Tensor:
        if not self.fused_convs:
            return 2.0 * torch.sigmoid(sum(m(source) for m in convs) / len(convs))
        weight = merged_kernel([m.conv.weight for m in convs])
        y = norm_groups(F.conv2d(source, weight, padding=weight.shape[-1] // 2),
                        [m.norm for m in convs])
        return 2.0 * torch.sigmoid(sum(y.chunk(len(convs), dim=1)) / len(convs))

    def gates(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if not self.fused_convs:
            return self.gate_x(x) + self.gate_h(h)
        y = paired_conv([x, h], [self.gate_x.conv.weight, self.gate_h.conv.weight])
        g_x, g_h = norm_groups(y, [self.gate_x.norm, self.gate_h.norm]).chunk(2, dim=1)
        return g_x + g_h

    def detail_context(self, x: torch.Tensor, h: torch.Tensor):
        for i in range(1, self.dcb_rounds + 1):
            if i % 2:
                x = self._scale(self.x_from_h, h) * x
            else:
                h = self._scale(self.h_from_x, x) * h
        return x, h

    def forward(self, x: torch.Tensor, state):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden, *x.shape[2:])
            state = (zeros, zeros)
        h, c = state
        x, h_mod = self.detail_context(x, h)
        gates = self.gates(x, h_mod)
        i, f, g, o = torch.split(gates, self.hidden, dim=1)
        c = self.norm_c(torch.sigmoid(f + FORGET_BIAS) * c + torch.sigmoid(i) * torch.tanh(g))
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class MoDeRNN(RecurrentPredictor):
    """embed (1x1 conv) -> ``layers`` MoDeRNN cells -> output (1x1 conv); no final activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        height: int,
        width: int,
        hidden: int = 64,
        layers: int = 4,
        filter_size: int = 3,
        dcb_rounds: int = 5,
        dcb_kernels: Sequence[int] = (3, 5, 7),
    ):
        super().__init__()
        for name, value in [
            ("in_channels", in_channels), ("out_channels", out_channels), ("height", height),
            ("width", width), ("hidden", hidden), ("layers", layers), ("dcb_rounds", dcb_rounds),
        ]:
            _check_positive(name, value)
        _check_odd("filter_size", filter_size)
        dcb_kernels = tuple(dcb_kernels)
        if not dcb_kernels:
            raise ValueError(f"dcb_kernels must name at least one kernel size; got {dcb_kernels}")
        for k in dcb_kernels:
            _check_odd("dcb_kernels entry", k)
        self.size = (height, width)
        self.embed = nn.Conv2d(in_channels, hidden, 1)
        self.cells = nn.ModuleList(
            MoDeRNNCell(hidden, height, width, filter_size, dcb_rounds, dcb_kernels)
            for _ in range(layers)
        )
        self.output = nn.Conv2d(hidden, out_channels, 1)

    def initial_state(self, frame: torch.Tensor):
        """(h, c) zeros per cell: what each cell starts from at ``state=None``."""
        shape = (frame.shape[0], self.embed.out_channels, *frame.shape[-2:])
        return [(frame.new_zeros(shape), frame.new_zeros(shape)) for _ in self.cells]

    def step(self, frame: torch.Tensor, state):
        if tuple(frame.shape[-2:]) != self.size:
            raise ValueError(
                f"MoDeRNN was built for {self.size[0]}x{self.size[1]} states (its LayerNorms are "
                f"tied to it); got frames of {frame.shape[-2]}x{frame.shape[-1]}"
            )
        states = [None] * len(self.cells) if state is None else state
        x, new_states = self.embed(frame), []
        for cell, cell_state in zip(self.cells, states, strict=True):
            x, cell_state = cell(x, cell_state)
            new_states.append(cell_state)
        return self.output(x), new_states


def _check_odd(name: str, value) -> None:
    _check_positive(name, value)
    if value % 2 == 0:
        raise ValueError(f"{name} must be odd so 'same' padding keeps the size; got {value!r}")


@register_model(
    "modernn",
    family="MoDeRNN",
    paper="Chai, Xu & Yuan 2021, MoDeRNN: Towards Fine-grained Motion Details for "
    "Spatiotemporal Predictive Learning, arXiv:2110.12978",
    width_arg="hidden",
)
def modernn(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 4,
    hidden: int = 64,
    layers: int = 4,
    filter_size: int = 3,
    dcb_rounds: int = 5,
    dcb_kernels: Sequence[int] = (3, 5, 7),
) -> nn.Module:
    """MoDeRNN at the authors' Moving MNIST setting by default (5,867,600 parameters)."""
    for name, value in [("channels", channels), ("height", height), ("width", width),
                        ("patch", patch)]:
        _check_positive(name, value)
    c, h, w = patched_shape(channels, height, width, patch)
    core = MoDeRNN(c, c, h, w, hidden, layers, filter_size, dcb_rounds, dcb_kernels)
    return Patched(core, patch)
