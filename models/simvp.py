"""SimVP: a CNN encoder, a translator over time-stacked latents, a CNN decoder; no recurrence.

Gao et al. 2022, "SimVP: Simpler yet Better Video Prediction", CVPR (translator IncepU) and
Tan et al. 2022, "SimVP: Towards Simple yet Powerful Spatiotemporal Predictive Learning",
arXiv:2211.12509 (translator gSTA). Reference code: OpenSTL (chengtan9907/OpenSTL, 1e8e374),
``openstl/models/simvp_model.py`` and ``openstl/modules/simvp_modules.py``; defaults are
``configs/mmnist/simvp/SimVP_gSTA.py`` and ``SimVP_IncepU.py`` (hid_S 64, hid_T 512, N_S 4, N_T 8,
3x3 spatial kernels; gSTA: mlp_ratio 8 (SimVP_Model's default), drop_path 0). The blocks, the
chunked rollout for out_len != in_len and the equations are in ``models/_simvp_blocks.py``.

Frames go in un-patched (patch 1 in OpenSTL's configs): the encoder's stride-2 convolutions do
the downsampling. The translator's width is in_len * hid_S, so a model is built for one
``in_len`` (OpenSTL's ``in_shape[0]``; the smoke preset builds it with 4). Called with another
in_len, it reads the last in_len frames it was built for, or left-pads shorter inputs by
repeating their first frame (an extension for the harness; OpenSTL has no such case).
height and width are only checked: any multiple of 2^(N_S/2) runs.

Deviation: OpenSTL's MidMetaNet gives its blocks stochastic-depth rates linspace(0.01, drop_path,
N_T), so its "drop_path = 0" configs still drop the first N_T - 1 residual branches with rates
0.01 ... 0.0014 during training. Here drop_path = 0 drops nothing (train-mode forwards stay
deterministic); drop_path > 0 uses OpenSTL's schedule. No parameter is affected.

Parameters at the defaults (64x64x1 frames, in_len 10, so the translator sees 640 channels at
16x16). Encoder: conv 1->64 (640) + 3 x conv 64->64 (36,928), GroupNorms 4 x 128: 111,936.
Decoder: 2 x upsampling conv 64->256 (147,712) + 2 x conv 64->64 (36,928), GroupNorms 4 x 128,
readout 65: 369,857. A gSTA block at d channels (MLP 8d): BatchNorms 4d, proj_1 + proj_2
2d^2 + 2d, DW 5x5 26d, DW 7x7 50d, 1x1 to 2d 2d^2 + 2d, fc1 8d^2 + 8d, DW 3x3 on 8d 80d,
fc2 8d^2 + d, layer scales 2d: 20d^2 + 175d, so 8,304,000 at d = 640 and 5,332,480 at d = 512.
Translator: block(640) + 1x1 640->512 (328,192) + 7 x block(512) + 1x1 512->640 (328,320) =
46,287,872. Total 46,769,665; OpenSTL's docs (docs/en/model_zoos/video_benchmarks.md) report
46.8M for SimVP+gSTA on Moving MNIST.

IncepU translator (hid 512, N_T 8): an Inception block c_in -> c_out is a 1x1 conv to 256
(256 c_in + 256) and four 8-group convs 3/5/7/11 to c_out with GroupNorms (32 * 204 c_out
weights + 4 c_out biases + 8 c_out norm affines = 6,540 c_out). Encoder 640->512 (3,512,576) +
7 x 512->512 (3,479,808); decoder 512->512 (3,479,808) + 6 x 1024->512 (3,610,880) +
1024->640 (4,448,000): 57,464,320. Total 57,946,113 (57.9M), where OpenSTL's docs report 58.0M
for SimVP+IncepU; the 0.05M+ gap is unexplained (this file counts OpenSTL's current code).
"""
from __future__ import annotations

import torch.nn as nn

from ._simvp_blocks import build_simvp, preset_args
from .registry import register_model


@register_model(
    "simvp",
    family="SimVP",
    paper="Tan et al. 2022, SimVP: Towards Simple yet Powerful Spatiotemporal Predictive "
    "Learning (gSTA translator; SimVP: Gao et al. 2022, CVPR)",
    preset_args=preset_args(),
    # hid_T: the translator's width, most of the parameters (hid_S must stay even)
    width_arg="hid_T",
)
def simvp(
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
    spatio_kernel_enc: int = 3,
    spatio_kernel_dec: int = 3,
) -> nn.Module:
    """SimVP with the gSTA translator, OpenSTL's Moving MNIST setting (46,769,665 parameters)."""
    return build_simvp("gsta", channels, height, width, in_len, hid_S, hid_T, N_S, N_T,
                       spatio_kernel_enc, spatio_kernel_dec, mlp_ratio, drop_path)


@register_model(
    "simvp_incepu",
    family="SimVP",
    paper="Gao et al. 2022, SimVP: Simpler yet Better Video Prediction, CVPR (IncepU translator)",
    preset_args=preset_args(),
    # hid_T: the translator's width, most of the parameters (hid_S must stay even)
    width_arg="hid_T",
)
def simvp_incepu(
    channels: int = 1,
    height: int = 64,
    width: int = 64,
    in_len: int = 10,
    hid_S: int = 64,
    hid_T: int = 512,
    N_S: int = 4,
    N_T: int = 8,
    spatio_kernel_enc: int = 3,
    spatio_kernel_dec: int = 3,
) -> nn.Module:
    """SimVP v1 (Inception U-Net translator), OpenSTL's Moving MNIST setting (57,946,113 params).

    OpenSTL's SimVP_Model takes mlp_ratio / drop / drop_path for every translator; IncepU never
    uses them, so they are not arguments here. The encoder and decoder are OpenSTL's (PixelShuffle
    upsampling), not the original SimVP repository's transposed convolutions.
    """
    return build_simvp("incepu", channels, height, width, in_len, hid_S, hid_T, N_S, N_T,
                       spatio_kernel_enc, spatio_kernel_dec)
