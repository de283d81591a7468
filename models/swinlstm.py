"""SwinLSTM-D: an LSTM over frames whose cells are Swin Transformer blocks, in a U-shaped stack.

Tang et al. 2023, "SwinLSTM: Improving Spatiotemporal Prediction Accuracy using Swin Transformer
and LSTM", ICCV (arXiv:2308.09891), the deep variant SwinLSTM-D. Reference code: OpenSTL
(chengtan9907/OpenSTL, c74deb5), ``openstl/models/swinlstm_model.py`` (``SwinLSTM_D_Model``) and
``openstl/modules/swinlstm_modules.py`` (``DownSample``, ``UpSample``, ``SwinLSTMCell``, ``STB``,
``PatchExpanding``, ``PatchInflated``), built on timm 0.6.13's Swin pieces
(``timm/models/swin_transformer.py``: ``WindowAttention``, ``SwinTransformerBlock``,
``PatchMerging``; ``timm/models/layers/patch_embed.py``), written out here (timm is not a
dependency). Defaults are OpenSTL's ``configs/mmnist/SwinLSTM-D.py``. Checked against OpenSTL's
outputs in tests/test_swinlstm.py.

One call (frame ``[B, C, H, W]``, 2x2 patches, so a token grid of H/2 x W/2):

    x = LN(conv_2x2_stride2(frame))                          tokens [B, L, embed_dim]
    down stage i: x, state_i = cell_i(x, state_i); x = merge(x)    (grid / 2, width x 2)
    up stage i:   x, state'_i = cell'_i(x, state'_i); x = expand(x) (grid x 2, width / 2)
    next frame = sigmoid(conv_transpose_3x3_stride2(x))

merge: the four tokens of each 2x2 block, ordered (0,0), (1,0), (0,1), (1,1) as (row, column),
concatenated, LayerNorm(4d), Linear(4d -> 2d, no bias). expand: Linear(d -> 2d, no bias), each
token's 2d values read as a 2x2 block of d/2 (row-major), LayerNorm(d/2). The transposed conv
(padding 1, output padding 1) doubles the grid, so the patch size is 2 (OpenSTL issue #88).

A cell with blocks b_0..b_{n-1}, input x and state (h, c), zeros at the first call:

    o = b_0(x, h); o = b_j(o) for odd j; o = b_j(o, x) for even j >= 2
    F = sigmoid(o); c' = F * (c + tanh(o)); h' = F * tanh(c')      -> output h', state (h', c')

A block (timm's SwinTransformerBlock with the reference's ``STB.forward``), extra input e:

    y = LN1(x); if e is given: y = fuse([y, LN1(e)])   (fuse: Linear(2d -> d); one LN1 for both)
    x = x + W-MSA(y)  (windows of w x w tokens; odd blocks roll the grid by -w/2 first, mask the
                       tokens that the roll brought together, and roll back)
    x = x + fc2(GELU(fc1(LN2(x))))       (hidden mlp_ratio * d, exact-erf GELU)

with per-head relative position biases (a (2w-1)^2 table, timm's indexing) added to the scaled
dot products. As in timm, a stage whose grid is not larger than the window uses one window of
the whole grid and does not shift. Stochastic depth (``drop_path``, 0.1 in the reference) rises
linearly over each half's blocks (down: in order; up: reversed within each cell, as in
``UpSample``); it is off in eval mode.

Different on purpose: the reference builds tensors its forward never reads, and they are left
out here: ``UpSample.patch_embed`` (a PatchEmbed ``UpSample.forward`` never calls) and ``red``
in every odd block (those blocks get no extra input). At the paper configuration they are 896 +
1,345,664 = 1,346,560 of the reference's 20,191,969 parameters (the paper's 20.2M); this model
has 18,845,409. Frames need not be square (the reference asserts H == W). The rollout is the
harness's (models/base.py), which is the reference's when no true future frame is fed; in
training the harness may feed true frames (scheduled sampling), which OpenSTL's trainer never does.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._layers import drop_path
from .base import RecurrentPredictor
from .registry import register_model

PATCH = 2  # the transposed-conv readout always doubles the token grid


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, H, W, C]`` -> ``[B * windows, window * window, C]``: windows ordered by batch, window
    row, window column; tokens row-major inside a window."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_merge(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """The inverse of :func:`window_partition`: back to ``[B, H, W, C]``."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def relative_position_index(window: int) -> torch.Tensor:
    """``[w*w, w*w]``: the bias-table row for each (query, key) token pair of a window, from
    their row and column offsets (timm's ``get_relative_position_index``)."""
    rows, cols = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    d_row = rows[:, None] - rows[None, :] + window - 1
    d_col = cols[:, None] - cols[None, :] + window - 1
    return d_row * (2 * window - 1) + d_col


def shift_mask(h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """``[windows, w*w, w*w]``: 0 where two tokens of a shifted window were neighbours before
    the roll, -100 where the roll wrapped one of them around the border (timm's attn_mask)."""
    region = torch.zeros(1, h, w, 1)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for rows in bands:
        for cols in bands:
            region[:, rows, cols, :] = label
            label += 1
    labels = window_partition(region, window).squeeze(-1)  # [windows, w*w]
    differs = labels.unsqueeze(1) != labels.unsqueeze(2)
    return torch.zeros(differs.shape).masked_fill(differs, -100.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative position bias."""

    def __init__(self, dim: int, heads: int, window: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape  # b = batch * windows, n = tokens per window
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        scores = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        scores = scores + bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            windows = mask.shape[0]
            scores = scores.view(-1, windows, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            scores = scores.view(-1, self.heads, n, n)
        out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class SwinBlock(nn.Module):
    """One (shifted-)window transformer block; ``fuses`` blocks first mix in an extra input."""

    def __init__(self, dim: int, grid: tuple[int, int], heads: int, window: int, shift: bool,
                 fuses: bool, mlp_ratio: float, drop_rate: float):
        super().__init__()
        self.grid = grid
        if min(grid) <= window:  # timm: one window of the whole grid, no shift
            window, shift = min(grid), False
        if grid[0] % window or grid[1] % window:
            raise ValueError(f"window {window} does not divide a stage's token grid {grid[0]}x{grid[1]}; "
                             "choose frame sizes and a window that divide evenly")
        self.window = window
        self.shift = window // 2 if shift else 0
        self.drop_rate = drop_rate
        self.norm1 = nn.LayerNorm(dim)
        self.fuse = nn.Linear(2 * dim, dim) if fuses else None
        self.attn = WindowAttention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, int(dim * mlp_ratio))
        self.fc2 = nn.Linear(int(dim * mlp_ratio), dim)
        mask = shift_mask(*grid, window, self.shift) if self.shift else None
        self.register_buffer("attn_mask", mask)

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        h, w = self.grid
        b, n, c = x.shape
        y = self.norm1(x)
        if self.fuse is not None:
            y = self.fuse(torch.cat([y, self.norm1(extra)], dim=-1))
        y = y.view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(window_partition(y, self.window), self.attn_mask)
        y = window_merge(y, self.window, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + drop_path(y.reshape(b, n, c), self.drop_rate, self.training)
        mlp = self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x + drop_path(mlp, self.drop_rate, self.training)


class SwinLSTMCell(nn.Module):
    """An LSTM cell whose gate is a stack of Swin blocks (the module docstring's equations)."""

    def __init__(self, dim: int, grid: tuple[int, int], heads: int, window: int,
                 drop_rates: list[float], mlp_ratio: float):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, grid, heads, window, shift=j % 2 == 1, fuses=j % 2 == 0,
                      mlp_ratio=mlp_ratio, drop_rate=rate)
            for j, rate in enumerate(drop_rates)
        )

    def forward(self, x: torch.Tensor, state):
        h, c = (torch.zeros_like(x), torch.zeros_like(x)) if state is None else state
        o = self.blocks[0](x, h)
        for j, block in enumerate(self.blocks[1:], start=1):
            o = block(o, x if j % 2 == 0 else None)
        gate = torch.sigmoid(o)
        c = gate * (c + torch.tanh(o))
        h = gate * torch.tanh(c)
        return h, (h, c)


class PatchMerging(nn.Module):
    """2x2 neighbouring tokens -> one token of twice the width."""

    def __init__(self, dim: int, grid: tuple[int, int]):
        super().__init__()
        self.grid = grid
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, *self.grid, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class PatchExpanding(nn.Module):
    """One token -> 2x2 tokens of half the width."""

    def __init__(self, dim: int, grid: tuple[int, int]):
        super().__init__()
        self.grid = grid
        self.expand = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (h, w), b = self.grid, x.shape[0]
        x = self.expand(x)
        quarter = x.shape[-1] // 4
        x = x.view(b, h, w, 2, 2, quarter).permute(0, 1, 3, 2, 4, 5)
        return self.norm(x.reshape(b, 4 * h * w, quarter))


def stochastic_depth(depths: list[int], rate: float) -> list[float]:
    """Per-block drop-path rates, rising linearly from 0 to ``rate`` over all ``depths`` blocks."""
    return [r.item() for r in torch.linspace(0, rate, sum(depths), device="cpu")]


class SwinLSTM(RecurrentPredictor):
    """SwinLSTM-D: down cells with patch merging, up cells with patch expanding, per-cell states."""

    def __init__(self, channels: int, height: int, width: int, embed_dim: int,
                 depths_down: list[int], depths_up: list[int], heads: list[int], window: int,
                 mlp_ratio: float = 4.0, drop_path: float = 0.1):
        super().__init__()
        check_config(height, width, embed_dim, depths_down, depths_up, heads, window, drop_path)
        stages = len(depths_down)
        grid = (height // PATCH, width // PATCH)
        self.grid = grid
        self.embed = nn.Conv2d(channels, embed_dim, kernel_size=PATCH, stride=PATCH)
        self.embed_norm = nn.LayerNorm(embed_dim)
        rates = stochastic_depth(depths_down, drop_path)
        self.down, self.merge = nn.ModuleList(), nn.ModuleList()
        for i, depth in enumerate(depths_down):
            size = (grid[0] >> i, grid[1] >> i)
            first = sum(depths_down[:i])
            self.down.append(SwinLSTMCell(embed_dim << i, size, heads[i], window,
                                          rates[first:first + depth], mlp_ratio))
            self.merge.append(PatchMerging(embed_dim << i, size))
        rates = stochastic_depth(depths_up, drop_path)
        self.up, self.expand = nn.ModuleList(), nn.ModuleList()
        for i in range(stages):  # deepest first; cell i mirrors down stage stages - 1 - i
            k = stages - 1 - i
            size = (grid[0] >> (stages - i), grid[1] >> (stages - i))
            first = sum(depths_up[:k])
            self.up.append(SwinLSTMCell(embed_dim << (stages - i), size, heads[k], window,
                                        rates[first:first + depths_up[k]][::-1], mlp_ratio))
            self.expand.append(PatchExpanding(embed_dim << (stages - i), size))
        self.unembed = nn.ConvTranspose2d(embed_dim, channels, kernel_size=3, stride=2, padding=1,
                                          output_padding=1)

    def step(self, frame: torch.Tensor, state):
        down_states, up_states = state or ([None] * len(self.down), [None] * len(self.up))
        x = self.embed_norm(self.embed(frame).flatten(2).transpose(1, 2))
        new_down, new_up = [], []
        for cell, merge, s in zip(self.down, self.merge, down_states, strict=True):
            x, s = cell(x, s)
            x = merge(x)
            new_down.append(s)
        for cell, expand, s in zip(self.up, self.expand, up_states, strict=True):
            x, s = cell(x, s)
            x = expand(x)
            new_up.append(s)
        x = x.transpose(1, 2).reshape(x.shape[0], -1, *self.grid)
        return torch.sigmoid(self.unembed(x)), (new_down, new_up)


def check_config(height, width, embed_dim, depths_down, depths_up, heads, window, drop_path):
    """Raise a ValueError naming the first argument the model cannot be built with."""
    stages = len(depths_down)
    if not (stages >= 1 and len(depths_up) == stages and len(heads) == stages):
        raise ValueError(f"depths_down, depths_up and heads need one entry per stage; got "
                         f"{list(depths_down)}, {list(depths_up)}, {list(heads)}")
    if min(*depths_down, *depths_up) < 1 or min(heads) < 1 or window < 1 or embed_dim < 1:
        raise ValueError("depths, heads, window and embed_dim must be >= 1")
    if not 0.0 <= drop_path < 1.0:
        raise ValueError(f"drop_path must be in [0, 1); got {drop_path}")
    step = PATCH << stages
    if height % step or width % step:
        raise ValueError(f"frame size {height}x{width}: {stages} stages of 2x2 patch merging after "
                         f"2x2 patches need height and width divisible by {step}")
    for i, h in enumerate(heads):
        if (embed_dim << i) % h:
            raise ValueError(f"heads[{i}] = {h} does not divide stage {i}'s width "
                             f"{embed_dim << i} (embed_dim {embed_dim} * 2^{i})")


@register_model(
    "swinlstm",
    family="SwinLSTM",
    paper="Tang et al. 2023, SwinLSTM: Improving Spatiotemporal Prediction Accuracy using Swin "
    "Transformer and LSTM, ICCV (SwinLSTM-D)",
    preset_args={
        # smoke: 32x32 frames, one stage (a 16x16 token grid, 8x8 at the bottom), a plain and a
        # shifted block per cell; windows of 2 would cost 3x the time of these (many tiny windows)
        "smoke": {"embed_dim": 8, "depths_down": (2,), "depths_up": (2,), "heads": (2,),
                  "window": 4},
        # quick: 64x64 frames, the paper's grids and window, a quarter of its width and depth
        "quick": {"embed_dim": 32, "depths_down": (2, 2), "depths_up": (2, 2), "heads": (2, 4),
                  "window": 4},
    },
    width_arg="embed_dim",
)
def swinlstm(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    embed_dim: int = 128,
    depths_down: tuple[int, ...] = (2, 6),
    depths_up: tuple[int, ...] = (6, 2),
    heads: tuple[int, ...] = (4, 8),
    window: int = 4,
    mlp_ratio: float = 4.0,
    drop_path: float = 0.1,
) -> nn.Module:
    """SwinLSTM-D at OpenSTL's Moving MNIST setting (18,845,409 parameters; the reference's
    20,191,969 include 1,346,560 its forward never uses). Patches are 2x2 (fixed by the readout).
    ``heads[i]`` serves down stage i and the up stage of twice its width; ``depths_up[i]`` is the
    depth of that up stage (OpenSTL's indexing)."""
    return SwinLSTM(channels, height, width, embed_dim, list(depths_down), list(depths_up),
                    list(heads), window, mlp_ratio, drop_path)
