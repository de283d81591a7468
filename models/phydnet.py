"""PhyDNet: a PDE-constrained recurrent cell (PhyCell) beside a ConvLSTM, in a shared latent space.

Le Guen & Thome 2020, "Disentangling Physical Dynamics from Unknown Factors for Unsupervised
Video Prediction", CVPR. Reference code: the authors' vincent-leguen/PhyDNet as OpenSTL carries
it (chengtan9907/OpenSTL, ``openstl/modules/phydnet_modules.py``,
``openstl/models/phydnet_model.py``, ``openstl/methods/phydnet.py``); this file keeps its layout,
and reproduces OpenSTL's outputs and moment loss to float32 rounding (tests/test_golden_openstl.py).

One step, frame u (every block below is conv 3x3 + GroupNorm(16) + LeakyReLU(0.2); W = ``features``):

    z = E(u): W/2 ch. at stride 2, W/2 at stride 1, W at stride patch / 2
    h_phy = PhyCell(E_p(z), h_phy)                 E_p, E_r: two stride-1 blocks each
    x = ConvLSTM(E_r(z))                           ``layers`` cells, widths hidden, ..., W
    u_next = sigmoid(D(D_p(h_phy) + D_r(x)))       D_p, D_r: two stride-1 transposed blocks;
                                                   D mirrors E (last layer a plain transposed conv)
    PhyCell:  h~ = h + F(h),  F = conv 7x7 (W -> 49) + GroupNorm(7) + conv 1x1 (49 -> W)
              K = sigmoid(conv3x3([x, h]));  h' = h~ + K * (x - h~)
    ConvLSTM: i, f, o, g = split(conv3x3([x, h]), 4);  c' = s(f) c + s(i) tanh(g);  h' = s(o) tanh(c')

All convolutions have biases. ``patch`` is OpenSTL's: the encoder's total stride (2 or 4), not a
patchify; the frames reach the model whole (the returned wrapper has patch 1).

Auxiliary loss (the moment constraint): for every input channel b of F's 7x7 convolution, the
moment matrix of its 49 kernels, m[n] = M w[n, b] M^T with M[i, j] = (j - 3)^i / i!, should be
the one-hot matrix e_(n // 7, n % 7), so kernel n approximates the derivative of order
(n // 7, n % 7). The loss is moment_weight * sum_b mean((m - target)^2), the term OpenSTL and
the authors add (weight 1) to a *sum over the predicted frames* of per-frame mean squared errors.
The harness weighs an auxiliary loss against a per-element mean over all frames instead, so at
weight 1 the constraint counts ~19x more here (10 -> 10) than there; moment_weight = 1 / 19
restores their balance under the harness's 'mse' loss.

Not kept: the PhyCell-only and ConvLSTM-only decodings OpenSTL computes each step for
visualisation; OpenSTL's own teacher forcing (the harness's scheduled sampling replaces it).

Parameters at the defaults (64x64x1 frames, patch 4 -> 16x16 latents, features 64, hidden 128,
3 layers): E 320+64 + 9,248+64 + 18,496+128 = 28,320; E_p and E_r 2 * (36,928 + 128) = 74,112
each; D_p and D_r 74,112 each; D 18,464+64 + 9,248+64 + 289 = 28,129; PhyCell 153,713 (7x7) +
98 (GroupNorm) + 3,200 (1x1) + 73,792 (gate) = 230,803; ConvLSTM (64+128)*512*9 + 512 =
885,248, (128+128)*512*9 + 512 = 1,180,160, (128+64)*256*9 + 256 = 442,624. Total 3,091,732,
the same as OpenSTL (PhyDNet_Model has no unused parameters; the moment matrices are buffers).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ._cells import check_positive
from .base import RecurrentPredictor
from .patch import Patched
from .registry import register_model

KERNEL = 7  # PhyCell's kernel: 49 kernels, one per moment up to order (6, 6)


def block(c_in: int, c_out: int, stride: int, up: bool = False) -> nn.Sequential:
    conv = (nn.ConvTranspose2d(c_in, c_out, 3, stride, padding=1, output_padding=stride - 1)
            if up else nn.Conv2d(c_in, c_out, 3, stride, padding=1))
    return nn.Sequential(conv, nn.GroupNorm(16, c_out), nn.LeakyReLU(0.2))


def moment_matrix(size: int = KERNEL) -> torch.Tensor:
    """M[i, j] = (j - centre)^i / i!: row i of M @ k gives the i-th moment of kernel k."""
    # Constants (here and in moment_targets) are computed on the CPU even under
    # `with torch.device("meta")`, where --list-models counts parameters: a meta arange or eye
    # would load PyTorch's decompositions (seconds).
    offsets = torch.arange(size, dtype=torch.float64, device="cpu") - (size - 1) // 2
    return torch.stack([offsets**i / math.factorial(i) for i in range(size)])


def moment_targets(size: int = KERNEL) -> torch.Tensor:
    """``[size^2, size, size]``: kernel n should have the single moment (n // size, n % size)."""
    return torch.eye(size * size, dtype=torch.float64, device="cpu").view(size * size, size, size)


class PhyCell(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        n = KERNEL * KERNEL
        self.F = nn.Sequential(
            nn.Conv2d(features, n, KERNEL, padding=KERNEL // 2),
            nn.GroupNorm(7, n),
            nn.Conv2d(n, features, 1),
        )
        self.gate = nn.Conv2d(2 * features, features, 3, padding=1)
        self.register_buffer("moments", moment_matrix(), persistent=False)
        self.register_buffer("targets", moment_targets(), persistent=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        k = torch.sigmoid(self.gate(torch.cat([x, h], dim=1)))
        h_pred = h + self.F(h)
        return h_pred + k * (x - h_pred)

    def moment_loss(self) -> torch.Tensor:
        """sum over input channels of mean((moments of the 49 kernels - one-hot targets)^2)."""
        w = self.F[0].weight.double()  # [49, features, 7, 7]
        # In float64 whatever the module's dtype: model.to(float32 / bf16) casts these buffers.
        moments, targets = self.moments.double(), self.targets.double()
        m = torch.einsum("ip,nbpq,jq->nbij", moments, w, moments)
        error = (m - targets[:, None]).square()
        return error.mean(dim=(0, 2, 3)).sum().float()


class ConvLSTMCell(nn.Module):
    def __init__(self, c_in: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(c_in + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x, h, c):
        i, f, o, g = torch.split(self.conv(torch.cat([x, h], dim=1)), self.hidden, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class PhyDNet(RecurrentPredictor):
    """State: (PhyCell hidden, ConvLSTM h per layer, ConvLSTM c per layer)."""

    def __init__(self, channels: int, patch: int, features: int, hidden: int, layers: int,
                 moment_weight: float):
        super().__init__()
        nf, s2 = features // 2, patch // 2
        self.encoder = nn.Sequential(block(channels, nf, 2), block(nf, nf, 1), block(nf, features, s2))
        self.enc_phys = nn.Sequential(block(features, features, 1), block(features, features, 1))
        self.enc_resid = nn.Sequential(block(features, features, 1), block(features, features, 1))
        self.dec_phys = nn.Sequential(*(block(features, features, 1, up=True) for _ in range(2)))
        self.dec_resid = nn.Sequential(*(block(features, features, 1, up=True) for _ in range(2)))
        self.decoder = nn.Sequential(
            block(features, nf, 2, up=True), block(nf, nf, 1, up=True),
            nn.ConvTranspose2d(nf, channels, 3, s2, padding=1, output_padding=s2 - 1),
        )
        self.phycell = PhyCell(features)
        widths = [hidden] * (layers - 1) + [features]
        self.convlstm = nn.ModuleList(
            ConvLSTMCell(features if i == 0 else widths[i - 1], widths[i]) for i in range(layers)
        )
        self.widths, self.moment_weight = widths, moment_weight

    def step(self, frame: torch.Tensor, state):
        z = self.encoder(frame)
        if state is None:
            b, _, h, w = z.shape
            zeros = tuple(z.new_zeros(b, width, h, w) for width in self.widths)
            state = (torch.zeros_like(z), zeros, zeros)
        h_phy, hs, cs = state
        h_phy = self.phycell(self.enc_phys(z), h_phy)
        x, new_h, new_c = self.enc_resid(z), [], []
        for cell, h, c in zip(self.convlstm, hs, cs, strict=True):
            x, c = cell(x, h, c)
            new_h.append(x)
            new_c.append(c)
        out = torch.sigmoid(self.decoder(self.dec_phys(h_phy) + self.dec_resid(x)))
        return out, (h_phy, tuple(new_h), tuple(new_c))

    def auxiliary_loss(self, states) -> torch.Tensor:
        return self.moment_weight * self.phycell.moment_loss()


@register_model(
    "phydnet",
    family="PhyDNet",
    paper="Le Guen & Thome 2020, Disentangling Physical Dynamics from Unknown Factors for "
    "Unsupervised Video Prediction, CVPR",
    # smoke / quick: 32 latent features (the narrowest GroupNorm(16) allows); quick adds a
    # 2-layer ConvLSTM of width 32: 1.7 GMACs per 10 -> 10 sequence, as ConvLSTM's quick model
    # (generic scaling alone would keep 64 features: 4.7). Smoke's generic layers=1 leaves one
    # ConvLSTM cell of `features` width.
    preset_args={"smoke": {"features": 32}, "quick": {"features": 32, "hidden": 32, "layers": 2}},
    width_arg="hidden",
)
def phydnet(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    patch: int = 4,
    hidden: int = 128,
    layers: int = 3,
    features: int = 64,
    moment_weight: float = 1.0,
) -> nn.Module:
    """PhyDNet at OpenSTL's Moving MNIST setting by default (3,091,732 parameters).

    ``patch`` (2 or 4) is the encoder's stride; ``features`` the latent width (a multiple of
    32); ``hidden`` the width of every ConvLSTM cell but the last, which has ``features``.
    """
    for name, value in [("channels", channels), ("height", height), ("width", width),
                        ("hidden", hidden), ("layers", layers), ("features", features)]:
        check_positive(name, value)
    if patch not in (2, 4) or isinstance(patch, bool):
        raise ValueError(f"patch must be 2 or 4 (the encoder's stride, as in OpenSTL); got {patch!r}")
    if height % patch or width % patch:
        raise ValueError(f"patch {patch} does not divide the frame size {height}x{width}")
    if features % 32:
        raise ValueError(f"features must be a multiple of 32 (GroupNorm(16) on features / 2); "
                         f"got {features}")
    if not isinstance(moment_weight, int | float) or not moment_weight >= 0:
        raise ValueError(f"moment_weight must be a number >= 0; got {moment_weight!r}")
    return Patched(PhyDNet(channels, patch, features, hidden, layers, float(moment_weight)), 1)
