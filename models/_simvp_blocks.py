"""What SimVP (IncepU, gSTA) and TAU share: the spatial encoder / decoder, the translators, the
chunked rollout and TAU's differential divergence regularisation (DDR).

Follows OpenSTL (chengtan9907/OpenSTL; read at 1e8e374, van.py at ae61bbd, methods/simvp.py at
56a7ab2): ``openstl/models/simvp_model.py`` (``SimVP_Model``, ``Encoder``, ``Decoder``,
``MidIncepNet``, ``MidMetaNet``, ``MetaBlock``), ``openstl/modules/simvp_modules.py``
(``ConvSC``, ``gInception_ST``, ``GASubBlock``, ``TAUSubBlock``), ``openstl/modules/layers/van.py``
(``MixMlp``), ``openstl/methods/simvp.py`` (``_predict``) and ``openstl/methods/tau.py``
(``diff_div_reg``). The same parameters, initialised from the same distributions (including TAU's
attention keeping PyTorch's default initialisation, because OpenSTL swaps the gSTA attention in
after initialising the block); not the same random draws.

Network (T input frames of C x H x W, N_S even):
  encoder  N_S x ConvSC(3x3 conv -> GroupNorm(2) -> SiLU); layers 1, 3, ... have stride 2,
           so the latent is hid_S x H / 2^(N_S/2) x W / 2^(N_S/2); layer 0's output is the skip.
  translator on the T * hid_S channels of the stacked latents (time folded into channels).
  decoder  N_S x ConvSC mirrored (3x3 conv to 4x channels + PixelShuffle(2) for upsampling);
           the last one reads (translator output + skip); a 1x1 conv (with bias) reads out C.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._cells import check_positive
from ._layers import drop_path
from .base import Prediction, check_call, windowed_rollout

# Scaled-down settings for the harness presets (``preset_args()`` gives each model its own copy);
# in_len comes from the data, which the harness passes to every constructor that takes it.
# smoke: 32x32 frames, 4 -> 4; the 2-layer encoder leaves a 16x16 latent.
# quick: 64x64, 10 -> 10; N_S 4 keeps the reference's 16x16 latent, and a forward + backward of
# batch 8 costs about 100 GFLOP for gSTA and TAU (less for IncepU), near ConvLSTM's quick setting
# (81 GFLOP); N_S 2 would cost about 360 GFLOP, mostly gSTA's 8x MLP at 32x32.
PRESET_ARGS = {
    "smoke": {"hid_S": 8, "hid_T": 16, "N_S": 2, "N_T": 2},
    "quick": {"hid_S": 16, "hid_T": 64, "N_S": 4, "N_T": 2},
}


def preset_args() -> dict[str, dict]:
    return {preset: dict(args) for preset, args in PRESET_ARGS.items()}


# ---------------------------------------------------------------- initialisation (OpenSTL's)


def _trunc_normal_init(module: nn.Module) -> None:
    """BasicConv2d._init_weights: conv weights ~ truncated N(0, 0.02), biases 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


def _fan_out_init(module: nn.Module) -> None:
    """GASubBlock._init_weights: conv weights ~ N(0, 2 / fan_out), biases 0 (Linear: 0.02)."""
    if getattr(module, "weight", None) is not None and module.weight.is_meta:
        return  # a meta build (parameter counting) has no values; normal_ there costs seconds
    if isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
        module.weight.data.normal_(0, math.sqrt(2.0 / (fan_out // module.groups)))
        if module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# ---------------------------------------------------------------- spatial encoder / decoder


class ConvSC(nn.Module):
    """k x k conv (stride 2 if ``down``; to 4x channels + PixelShuffle(2) if ``up``), GN(2), SiLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, down: bool = False, up: bool = False):
        super().__init__()
        stride = 2 if down else 1
        padding = (kernel - stride + 1) // 2
        if up:
            self.conv = nn.Sequential(nn.Conv2d(c_in, 4 * c_out, kernel, padding=padding),
                                      nn.PixelShuffle(2))
        else:
            self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding)
        self.norm = nn.GroupNorm(2, c_out)
        self.act = nn.SiLU()
        self.apply(_trunc_normal_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


def _strided(n_s: int) -> list[bool]:
    return [i % 2 == 1 for i in range(n_s)]  # OpenSTL's sampling_generator for even N_S


class Encoder(nn.Module):
    def __init__(self, c_in: int, hid_s: int, n_s: int, kernel: int):
        super().__init__()
        self.layers = nn.ModuleList(
            ConvSC(c_in if i == 0 else hid_s, hid_s, kernel, down=s)
            for i, s in enumerate(_strided(n_s))
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = latent = self.layers[0](x)
        for layer in self.layers[1:]:
            latent = layer(latent)
        return latent, skip


class Decoder(nn.Module):
    def __init__(self, hid_s: int, c_out: int, n_s: int, kernel: int):
        super().__init__()
        self.layers = nn.ModuleList(
            ConvSC(hid_s, hid_s, kernel, up=s) for s in reversed(_strided(n_s))
        )
        self.readout = nn.Conv2d(hid_s, c_out, 1)

    def forward(self, z: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            z = layer(z)
        return self.readout(self.layers[-1](z + skip))


# ---------------------------------------------------------------- IncepU translator (SimVP v1)


class GroupConvNormAct(nn.Module):
    """OpenSTL's GroupConv2d with act_norm: grouped k x k conv, GroupNorm, LeakyReLU(0.2)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int):
        super().__init__()
        groups = groups if c_in % groups == 0 else 1
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups)
        self.norm = nn.GroupNorm(groups, c_out)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class Inception(nn.Module):
    """gInception_ST: a 1x1 conv to c_hid, then the sum of grouped 3/5/7/11 branches."""

    def __init__(self, c_in: int, c_hid: int, c_out: int, kernels=(3, 5, 7, 11), groups: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_hid, 1)
        self.branches = nn.ModuleList(GroupConvNormAct(c_hid, c_out, k, groups) for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return sum(branch(x) for branch in self.branches)


class IncepUTranslator(nn.Module):
    """MidIncepNet: a U-Net of N_T Inception blocks down and N_T up, skips concatenated."""

    def __init__(self, channels: int, hid: int, n_t: int):
        super().__init__()
        self.enc = nn.ModuleList(
            Inception(channels if i == 0 else hid, hid // 2, hid) for i in range(n_t)
        )
        self.dec = nn.ModuleList(
            Inception(hid if i == 0 else 2 * hid, hid // 2, channels if i == n_t - 1 else hid)
            for i in range(n_t)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, layer in enumerate(self.enc):
            z = layer(z)
            if i < len(self.enc) - 1:
                skips.append(z)
        z = self.dec[0](z)
        for layer, skip in zip(self.dec[1:], reversed(skips), strict=True):
            z = layer(torch.cat([z, skip], dim=1))
        return z


# ---------------------------------------------------------------- gSTA / TAU translator (MetaFormer)


class GatedAttention(nn.Module):
    """gSTA's large-kernel attention: DW 5x5 -> DW 7x7 dilation 3 -> 1x1 to 2*dim; f * sigmoid(g)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv_spatial = nn.Conv2d(dim, dim, 7, padding=9, groups=dim, dilation=3)
        self.conv1 = nn.Conv2d(dim, 2 * dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g = self.conv1(self.conv_spatial(self.conv0(x))).chunk(2, dim=1)
        return torch.sigmoid(g) * f


class TemporalAttention(nn.Module):
    """TAU: statical attention (DW 5x5 -> DW 7x7 dil. 3 -> 1x1) times dynamical attention
    (squeeze-excitation over channels, i.e. over time x features), times the input."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv0 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv_spatial = nn.Conv2d(dim, dim, 7, padding=9, groups=dim, dilation=3)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        squeezed = dim // max(dim // 16, 4)  # OpenSTL's formula: 16 for any dim >= 64
        self.fc = nn.Sequential(nn.Linear(dim, squeezed, bias=False), nn.ReLU(),
                                nn.Linear(squeezed, dim, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        statical = self.conv1(self.conv_spatial(self.conv0(x)))
        dynamical = self.fc(x.mean(dim=(2, 3)))[:, :, None, None]
        return dynamical * statical * x


class AttentionUnit(nn.Module):
    """proj_1 -> GELU -> gating -> proj_2, plus a shortcut (OpenSTL's SpatialAttention)."""

    def __init__(self, dim: int, gating: nn.Module):
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = gating
        self.proj_2 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj_2(self.spatial_gating_unit(self.activation(self.proj_1(x))))


class MixMlp(nn.Module):
    """1x1 conv -> DW 3x3 conv -> GELU -> 1x1 conv (dropout 0 in every OpenSTL config)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x))))


class MetaBlock(nn.Module):
    """GASubBlock / TAUSubBlock at ``dim`` channels, then a 1x1 conv to ``out`` if they differ:
    x += ls1 * attn(BN(x)); x += ls2 * mlp(BN(x)), layer scales initialised to 0.01."""

    def __init__(self, dim: int, out: int, kind: str, mlp_ratio: float, drop_rate: float):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.attn = AttentionUnit(dim, GatedAttention(dim))
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = MixMlp(dim, int(dim * mlp_ratio))
        self.layer_scale_1 = nn.Parameter(torch.full((dim,), 1e-2))
        self.layer_scale_2 = nn.Parameter(torch.full((dim,), 1e-2))
        self.drop_rate = drop_rate
        self.apply(_fan_out_init)
        if kind == "tau":  # built after the init, as TAUSubBlock does: PyTorch's default init
            self.attn = AttentionUnit(dim, TemporalAttention(dim))
        self.reduction = nn.Conv2d(dim, out, 1) if dim != out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale_1 = self.layer_scale_1[:, None, None]
        scale_2 = self.layer_scale_2[:, None, None]
        x = x + drop_path(scale_1 * self.attn(self.norm1(x)), self.drop_rate, self.training)
        x = x + drop_path(scale_2 * self.mlp(self.norm2(x)), self.drop_rate, self.training)
        return x if self.reduction is None else self.reduction(x)


class MetaTranslator(nn.Module):
    """MidMetaNet: N_T blocks, channels -> hid -> ... -> hid -> channels (no U-Net skips)."""

    def __init__(self, channels: int, hid: int, n_t: int, kind: str, mlp_ratio: float,
                 drop_path_rate: float):
        super().__init__()
        # OpenSTL: linspace(1e-2, drop_path, N_T); at drop_path = 0 we drop nothing (see simvp.py).
        rates = ([0.0] * n_t if drop_path_rate <= 0
                 else torch.linspace(1e-2, drop_path_rate, n_t, device="cpu").tolist())
        dims = [channels] + [hid] * (n_t - 1) + [channels]
        self.blocks = nn.Sequential(*(
            MetaBlock(dims[i], dims[i + 1], kind, mlp_ratio, rates[i]) for i in range(n_t)
        ))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(z)


# ---------------------------------------------------------------- the network and its rollout


class SimVPNet(nn.Module):
    """Maps ``in_len`` frames ``[B, T, C, H, W]`` to the next ``in_len`` frames, all at once."""

    def __init__(self, channels: int, in_len: int, hid_s: int, hid_t: int, n_s: int, n_t: int,
                 translator: str, kernel_enc: int = 3, kernel_dec: int = 3,
                 mlp_ratio: float = 8.0, drop_path_rate: float = 0.0):
        super().__init__()
        self.in_len = in_len
        self.enc = Encoder(channels, hid_s, n_s, kernel_enc)
        self.dec = Decoder(hid_s, channels, n_s, kernel_dec)
        if translator == "incepu":
            self.hid = IncepUTranslator(in_len * hid_s, hid_t, n_t)
        else:
            self.hid = MetaTranslator(in_len * hid_s, hid_t, n_t, translator, mlp_ratio,
                                      drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        latent, skip = self.enc(x.reshape(b * t, c, h, w))
        _, c_, h_, w_ = latent.shape
        z = self.hid(latent.reshape(b, t * c_, h_, w_))
        return self.dec(z.reshape(b * t, c_, h_, w_), skip).reshape(b, t, c, h, w)


def ddr_loss(pred: torch.Tensor, target: torch.Tensor, tau: float = 0.1,
             eps: float = 1e-12) -> torch.Tensor:
    """TAU's differential divergence regularisation (OpenSTL ``diff_div_reg``): for each pair of
    consecutive frames, softmax(difference / tau) over the C*H*W positions, for the prediction (p)
    and the target (q); mean over batch, frame pairs and positions of p * log(p / (q + eps) + eps)
    (a KL(p || q) divided by C*H*W). Zero when there are at most 2 frames, as in OpenSTL."""
    b, t = pred.shape[:2]
    if t <= 2:
        return pred.new_zeros(())
    p = F.softmax((pred[:, 1:] - pred[:, :-1]).reshape(b, t - 1, -1).float() / tau, dim=-1)
    q = F.softmax((target[:, 1:] - target[:, :-1]).reshape(b, t - 1, -1).float() / tau, dim=-1)
    return (p * torch.log(p / (q + eps) + eps)).mean()


class SimVPPredictor(nn.Module):
    """The calling convention around :class:`SimVPNet`.

    The network maps a window of T frames (the ``in_len`` it was built for) to the next T.
    ``out_len == T``: one pass. ``out_len < T``: one pass, cropped. ``out_len > T``: OpenSTL's
    autoregressive chunks (``models.base.windowed_rollout``): the T predicted frames become the
    next input, as often as needed, and the concatenation is cropped to ``out_len``. ``truth_mask``
    is ignored (no scheduled sampling in SimVP/TAU); predictions read only ``frames[:, :in_len]``.

    Called with another ``in_len`` (outside OpenSTL, which fixes it), the window is the last T
    input frames, or, with fewer than T, the input left-padded by repeating its first frame.

    With ``ddr_alpha`` set (TAU), ``aux_loss = ddr_alpha * ddr_loss(future, true future)`` while
    training and when ``frames`` holds the ``out_len`` true future frames; else ``None``.
    """

    def __init__(self, net: SimVPNet, scale: int, ddr_alpha: float | None = None):
        super().__init__()
        self.net = net
        self.scale = scale  # 2 ** (N_S / 2); height and width only need to be multiples of it
        self.ddr_alpha = ddr_alpha

    def forward(self, frames, in_len: int, out_len: int, truth_mask=None) -> Prediction:
        check_call(frames, in_len, out_len, truth_mask)
        if frames.shape[-2] % self.scale or frames.shape[-1] % self.scale:
            raise ValueError(f"the encoder downsamples by {self.scale}, which must divide the frame "
                             f"size; got {frames.shape[-2]}x{frames.shape[-1]}")
        future = windowed_rollout(self.net, frames, in_len, out_len, self.net.in_len)
        aux = None
        if self.ddr_alpha is not None and self.training and frames.shape[1] >= in_len + out_len:
            aux = self.ddr_alpha * ddr_loss(future, frames[:, in_len : in_len + out_len])
        return Prediction(future=future, aux_loss=aux)


def build_simvp(
    translator: str, channels: int, height: int, width: int, in_len: int, hid_S: int,
    hid_T: int, N_S: int, N_T: int, spatio_kernel_enc: int, spatio_kernel_dec: int,
    mlp_ratio: float = 8.0, drop_path: float = 0.0, ddr_alpha: float | None = None,
) -> SimVPPredictor:
    """Check the arguments (ValueError naming the bad one), then build."""
    for name, value in [("channels", channels), ("height", height), ("width", width),
                        ("in_len", in_len), ("hid_S", hid_S), ("hid_T", hid_T), ("N_S", N_S),
                        ("N_T", N_T), ("spatio_kernel_enc", spatio_kernel_enc),
                        ("spatio_kernel_dec", spatio_kernel_dec)]:
        check_positive(name, value)
    if N_S % 2:
        raise ValueError(f"N_S must be even (OpenSTL alternates stride 1 and 2 layers); got {N_S}")
    if N_T < 2:
        raise ValueError(f"N_T must be >= 2 (first and last translator blocks); got {N_T}")
    scale = 2 ** (N_S // 2)
    if height % scale or width % scale:
        raise ValueError(f"N_S={N_S} downsamples by {scale}, which must divide the frame size "
                         f"{height}x{width}")
    if hid_S % 2:
        raise ValueError(f"hid_S must be even (GroupNorm with 2 groups); got {hid_S}")
    for name, k in [("spatio_kernel_enc", spatio_kernel_enc), ("spatio_kernel_dec", spatio_kernel_dec)]:
        if k % 2 == 0:
            raise ValueError(f"{name} must be odd; got {k}")
    if translator == "incepu":
        if hid_T % 2 or (hid_T // 2 % 8 == 0 and (in_len * hid_S) % 8):
            raise ValueError(f"IncepU needs an even hid_T, and in_len * hid_S divisible by 8 when "
                             f"hid_T / 2 is; got hid_T={hid_T}, in_len * hid_S={in_len * hid_S}")
    else:
        if not (isinstance(mlp_ratio, int | float) and mlp_ratio > 1):
            raise ValueError(f"mlp_ratio must be a number > 1; got {mlp_ratio!r}")
        if not (isinstance(drop_path, int | float) and 0.0 <= drop_path < 1.0):
            raise ValueError(f"drop_path must be in [0, 1); got {drop_path!r}")
        if translator == "tau" and min(hid_T, in_len * hid_S) < 4:
            raise ValueError(f"TAU's squeeze-excitation needs hid_T and in_len * hid_S >= 4; got "
                             f"{hid_T} and {in_len * hid_S}")
    if ddr_alpha is not None and not (isinstance(ddr_alpha, int | float) and ddr_alpha >= 0):
        raise ValueError(f"alpha must be a number >= 0; got {ddr_alpha!r}")
    net = SimVPNet(channels, in_len, hid_S, hid_T, N_S, N_T, translator, spatio_kernel_enc,
                   spatio_kernel_dec, mlp_ratio, drop_path)
    return SimVPPredictor(net, scale, ddr_alpha)
