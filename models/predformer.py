"""PredFormer (Quadruplet-TSST): a pure transformer over patch tokens, attention factorised into
time and space, no recurrence and no convolution.

Tang et al. 2024, "PredFormer: Transformers Are Effective Spatial-Temporal Predictive Learners",
arXiv:2410.04733. Reference code: yyyujintang/PredFormer @ b73c7ae,
``openstl/models/PredFormer_Quadruplet_TSST.py`` (``PredFormer_Model``, ``PredFormerLayer``,
``GatedTransformer``, ``SwiGLU``, ``sinusoidal_embedding``) and
``openstl/modules/PredFormer_modules.py`` (``Attention``, ``PreNorm``); the rollout is
``openstl/methods/PredFormer.py`` (``_predict``). Defaults are its Moving MNIST configuration,
``configs/mmnist/PredFormer.py`` (patch 8, dim 256, heads 8, dim_head 32, scale_dim 4, depth 1,
Ndepth 6, no dropout, no drop path), the one ``scripts/mmnist/mm_PredFormer_TSST_train.sh`` trains.

Network (T = in_len frames of C x H x W, p the patch, N = (H / p)(W / p) tokens per frame):
  embed    each p x p patch, flattened as (p1, p2, c), -> Linear(C p^2, dim); tokens row-major;
  + a fixed sinusoid over the T * N positions q = t N + n:
           angle[q, i] = q / 10000^(2 floor(i / 2) / dim), sin on even i, cos on odd i
           (not learned and not in the reference's state dict; the angles rounded to float32 as
           the reference does, see ``sinusoid``);
  Ndepth blocks, each four GatedTransformers in the order T, S, S, T (attention over the T
           frames of one token position, then over the N tokens of one frame, twice, then over
           time again), with no residual around the block (the reference comments it out);
  head     LayerNorm, Linear(dim, C p^2), read as (c, p1, p2) per token (the embedding reads
           (p1, p2, c); the two agree for C = 1), folded back to frames. No final activation.
A GatedTransformer of ``depth`` layers: x += Attn(LN(x)); x += SwiGLU(LN(x)) per layer, then a
final LayerNorm. Attn is full (unmasked, also in time) multi-head attention, q, k, v from one
bias-free Linear(dim, 3 heads dim_head) split head-major, scores q.k * dim_head^-0.5, then a
Linear back to dim (skipped when heads == 1 and dim_head == dim). SwiGLU(x) =
fc2(SiLU(gate(x)) * value(x)) with hidden dim * scale_dim, every Linear with bias. LayerNorm eps
1e-5. Dropout as the reference places it: ``attn_dropout`` after the attention's output Linear,
``dropout`` after SwiGLU's product and after its fc2; ``drop_path`` (stochastic depth) on each
residual branch, per folded sequence.

Initialisation as the reference's: inside the GatedTransformers Linear weights ~ truncated
N(0, 0.02) and biases 0, LayerNorms (1, 0); the embedding and head keep PyTorch's defaults.

The model is built for one in_len (its positional embedding spans T * N positions) and one frame
size. One call maps the window of T input frames to the next T; other out_len are the
reference's chunks (``models.base.windowed_rollout``: cropped, or the predictions fed back).

Parameters at the defaults (64x64x1, in_len 10, 8x8 patches): embed 64 * 256 + 256 = 16,640;
a GatedTransformer at dim d, inner heads * dim_head = e, hidden 4d: 3 LayerNorms 6d, qkv 3de,
output ed + d, SwiGLU 2(4d^2 + 4d) + 4d^2 + d: 1,052,672 at d = e = 256, so a block 4,210,688
and 6 blocks 25,264,128; head 2 * 256 + 256 * 64 + 64 = 16,960. Total 25,297,728 (the paper's
25.3M); Ndepth 8 gives 33,719,104 (33.7M).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ._cells import check_positive
from ._layers import drop_path
from .base import Prediction, check_call, windowed_rollout
from .registry import register_model

# The reference's Quadruplet-TSST order: the axis each of a block's four transformers attends over.
TSST = ("time", "space", "space", "time")


def sinusoid(positions: int, dim: int) -> torch.Tensor:
    """``[positions, dim]`` float32: angle q / 10000^(2 floor(i/2) / dim), sin on even i and cos on
    odd i (the reference's ``sinusoidal_embedding``).

    The reference rounds the angles to float32 before the sin; that rounding (up to 3e-5 at
    q ~ 640) is kept, since it moves the values by as much. The sin itself is taken in float64 and
    rounded once, so the table is the same on every CPU, within one float32 ulp of the
    reference's float32 sin."""
    q = torch.arange(positions, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(dim, dtype=torch.float64)
    angle = (q / 10000.0 ** (2 * torch.div(i, 2, rounding_mode="floor") / dim)).float().double()
    return torch.where(torch.arange(dim) % 2 == 0, angle.sin(), angle.cos()).float()


class Attention(nn.Module):
    """Multi-head self-attention over dim 1 of ``[S, L, dim]`` (S independent sequences)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.project = not (heads == 1 and dim_head == dim)
        self.out = nn.Linear(inner, dim) if self.project else nn.Identity()
        self.drop = nn.Dropout(dropout) if self.project else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, length, _ = x.shape
        q, k, v = (part.reshape(s, length, self.heads, -1).transpose(1, 2)
                   for part in self.qkv(x).chunk(3, dim=-1))
        weights = ((q @ k.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(s, length, -1)
        return self.drop(self.out(out))


class SwiGLU(nn.Module):
    """fc2(SiLU(gate(x)) * value(x)), dropout after the product and after fc2."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.gate = nn.Linear(dim, hidden)
        self.value = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(nn.functional.silu(self.gate(x)) * self.value(x))))


class GatedLayer(nn.Module):
    """x += Attn(LN(x)); x += SwiGLU(LN(x)), each branch under stochastic depth."""

    def __init__(self, dim: int, heads: int, dim_head: int, hidden: int, dropout: float,
                 attn_dropout: float, drop_path: float):
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, attn_dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = SwiGLU(dim, hidden, dropout)
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + drop_path(self.attn(self.attn_norm(x)), self.drop_path, self.training)
        return x + drop_path(self.ffn(self.ffn_norm(x)), self.drop_path, self.training)


def _reference_init(module: nn.Module) -> None:
    """GatedTransformer._init_weights: Linear weights ~ truncated N(0, 0.02), biases 0; LN (1, 0)."""
    if isinstance(module, nn.Linear):
        if not module.weight.is_meta:  # a meta build (parameter counting) has no values
            nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class GatedTransformer(nn.Module):
    """``depth`` gated layers attending along one axis (``"time"`` or ``"space"``) of
    ``[B, T, N, dim]`` tokens, then a LayerNorm."""

    def __init__(self, axis: str, dim: int, depth: int, heads: int, dim_head: int, hidden: int,
                 dropout: float, attn_dropout: float, drop_path: float):
        super().__init__()
        self.axis = axis
        self.layers = nn.ModuleList(
            GatedLayer(dim, heads, dim_head, hidden, dropout, attn_dropout, drop_path)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.apply(_reference_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, n, d = x.shape
        # Sequences: the T frames of one token position, or the N tokens of one frame.
        seq = x.transpose(1, 2).reshape(b * n, t, d) if self.axis == "time" else x.reshape(b * t, n, d)
        for layer in self.layers:
            seq = layer(seq)
        seq = self.norm(seq)
        return seq.reshape(b, n, t, d).transpose(1, 2) if self.axis == "time" else seq.reshape(b, t, n, d)


class PredFormerNet(nn.Module):
    """``[B, T, C, H, W]`` -> the next T frames, T and H x W fixed at construction."""

    def __init__(self, channels: int, height: int, width: int, in_len: int, patch: int, dim: int,
                 heads: int, dim_head: int, scale_dim: int, depth: int, Ndepth: int,
                 dropout: float, attn_dropout: float, drop_path: float):
        super().__init__()
        self.in_len, self.patch, self.grid = in_len, patch, (height // patch, width // patch)
        tokens = self.grid[0] * self.grid[1]
        self.embed = nn.Linear(channels * patch * patch, dim)
        # Fixed, so not saved in checkpoints (the reference's is outside its state dict too).
        self.register_buffer("pos_embedding", sinusoid(in_len * tokens, dim).view(1, in_len, tokens, dim),
                             persistent=False)
        self.blocks = nn.ModuleList(
            nn.ModuleList(GatedTransformer(axis, dim, depth, heads, dim_head, dim * scale_dim,
                                           dropout, attn_dropout, drop_path) for axis in TSST)
            for _ in range(Ndepth)
        )
        self.head_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, channels * patch * patch)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = frames.shape
        p, (gh, gw) = self.patch, self.grid
        tokens = frames.reshape(b, t, c, gh, p, gw, p).permute(0, 1, 3, 5, 4, 6, 2)  # (p1, p2, c)
        x = self.embed(tokens.reshape(b, t, gh * gw, p * p * c)) + self.pos_embedding
        for block in self.blocks:
            for transformer in block:
                x = transformer(x)
        x = self.head(self.head_norm(x)).view(b, t, gh, gw, c, p, p)  # (c, p1, p2) per token
        return x.permute(0, 1, 4, 2, 5, 3, 6).reshape(b, t, c, h, w)


class PredFormer(nn.Module):
    """The calling convention around :class:`PredFormerNet` (``truth_mask`` is ignored: no
    scheduled sampling; predictions read only ``frames[:, :in_len]``)."""

    def __init__(self, net: PredFormerNet, height: int, width: int):
        super().__init__()
        self.net = net
        self.size = (height, width)

    def forward(self, frames, in_len: int, out_len: int, truth_mask=None) -> Prediction:
        check_call(frames, in_len, out_len, truth_mask)
        if tuple(frames.shape[-2:]) != self.size:
            raise ValueError(f"PredFormer was built for {self.size[0]}x{self.size[1]} frames (its "
                             f"positional embedding fixes the token grid); got "
                             f"{frames.shape[-2]}x{frames.shape[-1]}")
        return Prediction(future=windowed_rollout(self.net, frames, in_len, out_len, self.net.in_len))


# smoke: 32x32, 4 -> 4, an 8x8 grid of 4x4 patches; quick: 64x64, 10 -> 10, the paper's 8x8 patches
# at half the width and a third of the blocks: 2,130,368 parameters, and a forward + backward of
# batch 8 costs about 67 GFLOP, near ConvLSTM's quick setting (81 GFLOP).
PRESET_ARGS = {
    "smoke": {"patch": 4, "dim": 16, "heads": 2, "dim_head": 8, "scale_dim": 2, "Ndepth": 1},
    "quick": {"patch": 8, "dim": 128, "heads": 4, "dim_head": 32, "scale_dim": 4, "Ndepth": 2},
}


@register_model(
    "predformer",
    family="PredFormer",
    paper="Tang et al. 2024, PredFormer: Transformers Are Effective Spatial-Temporal Predictive "
    "Learners, arXiv:2410.04733 (Quadruplet-TSST)",
    preset_args={preset: dict(args) for preset, args in PRESET_ARGS.items()},
    width_arg="dim",
)
def predformer(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    in_len: int = 10,
    patch: int = 8,
    dim: int = 256,
    heads: int = 8,
    dim_head: int = 32,
    scale_dim: int = 4,
    depth: int = 1,
    Ndepth: int = 6,
    dropout: float = 0.0,
    attn_dropout: float = 0.0,
    drop_path: float = 0.0,
) -> nn.Module:
    """PredFormer TSST at the reference's Moving MNIST setting (25,297,728 parameters)."""
    for name, value in [("channels", channels), ("height", height), ("width", width),
                        ("in_len", in_len), ("patch", patch), ("dim", dim), ("heads", heads),
                        ("dim_head", dim_head), ("scale_dim", scale_dim), ("depth", depth),
                        ("Ndepth", Ndepth)]:
        check_positive(name, value)
    if height % patch or width % patch:
        raise ValueError(f"patch size {patch} does not divide the frame size {height}x{width}")
    for name, rate in [("dropout", dropout), ("attn_dropout", attn_dropout), ("drop_path", drop_path)]:
        if not (isinstance(rate, int | float) and 0.0 <= rate < 1.0) or math.isnan(rate):
            raise ValueError(f"{name} must be in [0, 1); got {rate!r}")
    net = PredFormerNet(channels, height, width, in_len, patch, dim, heads, dim_head, scale_dim,
                        depth, Ndepth, dropout, attn_dropout, drop_path)
    return PredFormer(net, height, width)
