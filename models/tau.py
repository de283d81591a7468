"""TAU: SimVP whose translator blocks use the Temporal Attention Unit, trained with DDR.

Tan et al. 2023, "Temporal Attention Unit: Towards Efficient Spatiotemporal Predictive
Learning", CVPR. Reference code: OpenSTL (chengtan9907/OpenSTL, 1e8e374): ``SimVP_Model`` with
``model_type='tau'`` (``TAUSubBlock``, ``TemporalAttention`` in ``openstl/modules/simvp_modules.py``)
and ``openstl/methods/tau.py`` (``diff_div_reg``); defaults are ``configs/mmnist/TAU.py``
(hid_S 64, hid_T 512, N_S 4, N_T 8, drop_path 0, alpha 0.1; mlp_ratio 8 from SimVP_Model).
Encoder, decoder, rollout and loss live in ``models/_simvp_blocks.py`` (shared with SimVP).

A TAU block is a gSTA block whose attention is
    statical(x) = conv1x1(DWconv7x7_dil3(DWconv5x5(x)))            (intra-frame, large kernel)
    dynamical(x) = sigmoid(W2 relu(W1 avgpool(x)))                   (inter-frame, over channels)
    attention(x) = dynamical(x) * statical(x) * x
where the channels are time x features. OpenSTL sizes the squeeze-excitation bottleneck as
dim // max(dim // 16, 4), i.e. 16 units for any dim >= 64 (not dim / 16), and builds this
attention after initialising the block, so it keeps PyTorch's default initialisation; both are
reproduced here.

DDR (``aux_loss``): while training, and only when ``frames`` holds the true future frames
(``in_len + out_len`` of them, as the harness passes during training), the model returns
``aux_loss = alpha * ddr_loss(future, frames[:, in_len:in_len + out_len])``; in eval mode, or
without the targets, ``aux_loss`` is None. The targets are read only by the loss: ``future`` is
computed from ``frames[:, :in_len]`` alone. As in OpenSTL, alpha weighs DDR against a per-element
mean squared error; the harness rescales ``aux_loss`` for its summed loss (bench/train/loss.py).

Deviation, as in simvp.py: drop_path = 0 means no stochastic depth (OpenSTL's schedule still
drops with rates 0.01 ... 0.0014 in that case). No parameter is affected.

Parameters at the defaults (64x64x1 frames, in_len 10): encoder 111,936 and decoder 369,857 as
in simvp.py. A TAU block at d channels: a gSTA block (20d^2 + 175d) whose gating 1x1 conv has d
instead of 2d outputs (-d^2 - d) plus a bias-free squeeze-excitation d -> 16 -> d (32d):
19d^2 + 206d, so 7,914,240 at d = 640 and 5,086,208 at d = 512. Translator: block(640) + 1x1
640->512 (328,192) + 7 x block(512) + 1x1 512->640 (328,320) = 44,174,208. Total 44,656,001
(44.7M). OpenSTL's Moving MNIST table that was available to check (video_benchmarks.md) does not
list TAU, so the 44.7M figure quoted for it was not verified against OpenSTL's docs.
"""
from __future__ import annotations

import torch.nn as nn

from ._simvp_blocks import build_simvp, preset_args
from .registry import register_model


@register_model(
    "tau",
    family="TAU",
    paper="Tan et al. 2023, Temporal Attention Unit: Towards Efficient Spatiotemporal "
    "Predictive Learning, CVPR",
    preset_args=preset_args(),
    # hid_T: the translator's width, most of the parameters (hid_S must stay even)
    width_arg="hid_T",
)
def tau(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    in_len: int = 10,
    hid_S: int = 64,
    hid_T: int = 512,
    N_S: int = 4,
    N_T: int = 8,
    mlp_ratio: float = 8.0,
    drop_path: float = 0.0,
    alpha: float = 0.1,
    spatio_kernel_enc: int = 3,
    spatio_kernel_dec: int = 3,
) -> nn.Module:
    """TAU at OpenSTL's Moving MNIST setting (44,656,001 parameters); ``alpha`` weighs DDR."""
    return build_simvp("tau", channels, height, width, in_len, hid_S, hid_T, N_S, N_T,
                       spatio_kernel_enc, spatio_kernel_dec, mlp_ratio, drop_path, alpha)
