"""OpenSTL's SimVP (gSTA), TAU and SimVP (IncepU) (chengtan9907/OpenSTL c74deb5): their
state-dict names onto ours, and the golden cases of their fixtures."""
from __future__ import annotations

from models.registry import create_model

from ..golden import GoldenCase, Tolerance


def simvp_encoder_decoder(n_s: int) -> dict[str, str]:
    """OpenSTL's Encoder / Decoder (ConvSC -> BasicConv2d) -> ours, under ``net.``."""
    mapping = {"dec.readout.weight": "net.dec.readout.weight",
               "dec.readout.bias": "net.dec.readout.bias"}
    for i in range(n_s):
        up = i % 2 == 0  # the decoder mirrors the encoder: its layer 0 upsamples (N_S = 2)
        for part in ("conv.weight", "conv.bias", "norm.weight", "norm.bias"):
            mapping[f"enc.enc.{i}.conv.{part}"] = f"net.enc.layers.{i}.{part}"
            if up and part.startswith("conv."):
                theirs, ours = part.replace("conv.", "conv.0."), part.replace("conv.", "conv.0.")
            else:
                theirs = ours = part
            mapping[f"dec.dec.{i}.conv.{theirs}"] = f"net.dec.layers.{i}.{ours}"
    return mapping


def metaformer_names(n_t: int, tau: bool):
    """MidMetaNet's MetaBlocks (GASubBlock / TAUSubBlock) -> our MetaTranslator blocks."""
    mapping = simvp_encoder_decoder(2)
    gating = ["conv0", "conv_spatial", "conv1"]
    for i in range(n_t):
        theirs, ours = f"hid.enc.{i}", f"net.hid.blocks.{i}"
        names = ["layer_scale_1", "layer_scale_2"]
        for norm in ("norm1", "norm2"):
            names += [f"{norm}.{b}" for b in
                      ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
        for conv in ["attn.proj_1", "attn.proj_2", "mlp.fc1", "mlp.fc2"] + [
                f"attn.spatial_gating_unit.{g}" for g in gating]:
            names += [f"{conv}.weight", f"{conv}.bias"]
        if tau:
            names += ["attn.spatial_gating_unit.fc.0.weight", "attn.spatial_gating_unit.fc.2.weight"]
        mapping.update({f"{theirs}.block.{n}": f"{ours}.{n}" for n in names})
        for p in ("weight", "bias"):
            mapping[f"{theirs}.block.mlp.dwconv.dwconv.{p}"] = f"{ours}.mlp.dwconv.{p}"
            if i in (0, n_t - 1):  # 160 -> 64 and 64 -> 160 channels
                mapping[f"{theirs}.reduction.{p}"] = f"{ours}.reduction.{p}"
    return mapping, set()


def incepu_names(n_t: int):
    mapping = simvp_encoder_decoder(2)
    for half in ("enc", "dec"):
        for i in range(n_t):
            theirs, ours = f"hid.{half}.{i}", f"net.hid.{half}.{i}"
            for p in ("weight", "bias"):
                mapping[f"{theirs}.conv1.{p}"] = f"{ours}.conv1.{p}"
                for j in range(4):
                    for part in ("conv", "norm"):
                        mapping[f"{theirs}.layers.{j}.{part}.{p}"] = f"{ours}.branches.{j}.{part}.{p}"
    return mapping, set()


SIMVP_ARGS = dict(channels=1, height=32, width=32, in_len=10, hid_S=16, hid_T=64, N_S=2, N_T=3,
                  spatio_kernel_enc=3, spatio_kernel_dec=3)


CASES = {
    "simvp": GoldenCase(
        "simvp_golden.npz",
        lambda: create_model("simvp", **SIMVP_ARGS, mlp_ratio=8.0, drop_path=0.0),
        lambda: metaformer_names(3, tau=False),
        Tolerance(atol=2e-5, growth=1.0,
                  measured="envelope 8.9e-07 (AVX-512 8.9e-07, f64 6.2e-07, ulp 8.9e-07, "
                           "SSE4.1 7.8e-07, 1 thread 7.2e-07); bit-exact on AVX2"),
    ),
    "tau": GoldenCase(
        "tau_golden.npz",
        lambda: create_model("tau", **SIMVP_ARGS, mlp_ratio=8.0, drop_path=0.0),
        lambda: metaformer_names(3, tau=True),
        Tolerance(atol=2e-5, growth=1.0,
                  measured="envelope 8.3e-07 (AVX-512 7.7e-07, f64 6.6e-07, ulp 8.1e-07, "
                           "SSE4.1 6.0e-07, 1 thread 8.3e-07); bit-exact on AVX2"),
    ),
    "simvp_incepu": GoldenCase(
        "simvp_incepu_golden.npz",
        lambda: create_model("simvp_incepu", **SIMVP_ARGS),
        lambda: incepu_names(3),
        Tolerance(atol=5e-5, growth=1.0,
                  measured="envelope 1.0e-06 (AVX-512 1.0e-06, f64 8.0e-07, ulp 8.9e-07, "
                           "SSE4.1 7.5e-07, 1 thread 8.9e-07); bit-exact on AVX2"),
    ),
}
