"""OpenSTL's recurrent models (chengtan9907/OpenSTL; commits in tests/fixtures/README.md): their
state-dict names onto ours, and the golden cases of their fixtures. ConvLSTM, PredRNN, PredRNN++,
MIM, PredRNN-V2, MAU, PhyDNet and E3D-LSTM; E3D-LSTM is compared with its switches at OpenSTL's
behaviour (``memory_flow=False, openstl_compat=True``), its default departs from OpenSTL on
purpose."""
from __future__ import annotations

from models.convlstm import ConvLSTM
from models.e3dlstm import E3DLSTM
from models.mau import MAU
from models.mim import MIM
from models.phydnet import PhyDNet
from models.predrnn import PredRNN
from models.predrnnpp import PredRNNpp
from models.predrnnv2 import PredRNNv2

from ..golden import GoldenCase, Tolerance

# The fixture configuration (tests/fixtures/README.md): 16 patched channels at 16x16, 2 layers of
# hidden 16, filter 3, no layer norm, 10 -> 10.
SMALL = dict(frame_channels=16, hidden=16, layers=2, filter_size=3)


def convlstm_names(layers: int) -> tuple[dict[str, str], set[str]]:
    """OpenSTL name -> our name, and the OpenSTL tensors its forward never reads."""
    mapping = {"conv_last.weight": "readout.weight"}
    unused = set()
    for i in range(layers):
        mapping[f"cell_list.{i}.conv_x.0.weight"] = f"cells.{i}.conv_x.0.weight"
        mapping[f"cell_list.{i}.conv_h.0.weight"] = f"cells.{i}.conv_h.0.weight"
        unused |= {f"cell_list.{i}.conv_o.0.weight", f"cell_list.{i}.conv_last.weight"}
    return mapping, unused


def predrnn_names(layers: int) -> tuple[dict[str, str], set[str]]:
    mapping = {"conv_last.weight": "readout.weight"}
    for i in range(layers):
        for conv in ("conv_x", "conv_h", "conv_m", "conv_o"):
            mapping[f"cell_list.{i}.{conv}.0.weight"] = f"cells.{i}.{conv}.0.weight"
        mapping[f"cell_list.{i}.conv_last.weight"] = f"cells.{i}.conv_mem.weight"
    return mapping, set()


# Bounds: bench/verify/golden.py derives them; tests/calibrate_golden.py re-measures ``measured``.
CONVLSTM_PREDRNN = {
    "convlstm": GoldenCase(
        "convlstm_golden.npz", lambda: ConvLSTM(**SMALL), lambda: convlstm_names(SMALL["layers"]),
        Tolerance(atol=5e-6, growth=1.0,
                  measured="envelope 1.3e-07 (ulp); AVX2 1.2e-07, SSE4.1 1.1e-07; bit-exact on AVX-512"),
    ),
    "predrnn": GoldenCase(
        "predrnn_golden.npz", lambda: PredRNN(**SMALL), lambda: predrnn_names(SMALL["layers"]),
        Tolerance(atol=5e-6, growth=1.1,
                  measured="envelope 2.3e-07 * 1.1^t; last step: f64 6.3e-07, ulp 1.0e-06, "
                           "AVX2 7.7e-07, SSE4.1 7.2e-07; bit-exact on AVX-512"),
    ),
}


LAYERS = 2


def st_lstm(theirs: str, ours: str) -> dict[str, str]:
    """PredRNN's ST-LSTM cell (OpenSTL ``SpatioTemporalLSTMCell``)."""
    names = {f"{theirs}.{c}.0.weight": f"{ours}.{c}.0.weight"
             for c in ("conv_x", "conv_h", "conv_m", "conv_o")}
    names[f"{theirs}.conv_last.weight"] = f"{ours}.conv_mem.weight"
    return names


def predrnnpp_names():
    mapping = {
        "conv_last.weight": "readout.weight",
        "gradient_highway.x_concat.0.weight": "highway.conv_x.0.weight",
        "gradient_highway.z_concat.0.weight": "highway.conv_z.0.weight",
    }
    unused = set()
    for i in range(LAYERS):
        for conv in ("conv_x", "conv_h", "conv_c", "conv_m", "conv_c2m", "conv_om"):
            mapping[f"cell_list.{i}.{conv}.0.weight"] = f"cells.{i}.{conv}.0.weight"
        mapping[f"cell_list.{i}.conv_last.weight"] = f"cells.{i}.conv_mem.weight"
        unused.add(f"cell_list.{i}.conv_o.0.weight")  # built, never read by CausalLSTMCell
    return mapping, unused


def peephole(theirs: str, ours: str) -> dict[str, str]:
    """OpenSTL's MIMN / MIMBlock.MIMS -> our PeepholeConvLSTM."""
    return {
        f"{theirs}.ct_weight": f"{ours}.peep_if",
        f"{theirs}.oc_weight": f"{ours}.peep_o",
        f"{theirs}.conv_x_concat.0.weight": f"{ours}.conv_x.0.weight",
        f"{theirs}.conv_h_concat.0.weight": f"{ours}.conv_h.0.weight",
    }


def mim_names():
    mapping = {"conv_last.weight": "readout.weight", **st_lstm("stlstm_layer.0", "cells.0")}
    unused = set()
    for i in range(1, LAYERS):
        block, ours = f"stlstm_layer.{i}", f"cells.{i}"
        mapping.update({
            f"{block}.conv_x_cc.0.weight": f"{ours}.conv_x.0.weight",
            f"{block}.conv_t_cc.0.weight": f"{ours}.conv_h.0.weight",
            f"{block}.conv_s_cc.0.weight": f"{ours}.conv_m.0.weight",
            f"{block}.conv_last.weight": f"{ours}.conv_mem.weight",
            **peephole(block, f"{ours}.stationary"),
            **peephole(f"stlstm_layer_diff.{i - 1}", f"nonstationary.{i - 1}"),
        })
        unused.add(f"stlstm_layer_diff.{i - 1}.conv_last.weight")  # MIMN's, never read
    return mapping, unused


def predrnnv2_names():
    mapping = {"conv_last.weight": "readout.weight", "adapter.weight": "adapter.weight"}
    for i in range(LAYERS):
        mapping.update(st_lstm(f"cell_list.{i}", f"cells.{i}"))
    return mapping, set()


def mau_names():
    # OpenSTL's encoders/decoders are lists of named Sequentials; ours are flat Sequentials
    # with the LeakyReLUs in between (encoder: conv, act, conv, act, conv, act).
    mapping = {
        "encoders.0.encoder_t_conv-1": "encoder.0", "encoders.1.encoder_t0": "encoder.2",
        "encoders.2.encoder_t1": "encoder.4", "decoders.0.c_decoder0": "decoder.0",
        "decoders.1.c_decoder1": "decoder.2", "srcnn.0": "readout",
    }
    for i in range(LAYERS):
        for conv in ("conv_t", "conv_t_next", "conv_s", "conv_s_next"):
            for j in (0, 1):
                mapping[f"cell_list.{i}.{conv}.{j}"] = f"cells.{i}.{conv}.{j}"
    mapping = {f"{a}.{p}": f"{b}.{p}" for a, b in mapping.items() for p in ("weight", "bias")}
    unused = {"merge.weight", "merge.bias", "conv_last_sr.weight", "conv_last_sr.bias"}
    return mapping, unused


def phydnet_names():
    """PhyDNet_Model: its encoder / decoder blocks are dcgan_conv / dcgan_upconv (``.main`` =
    conv, GroupNorm, LeakyReLU), ours plain Sequentials of the same three."""
    mapping = {}
    stacks = [("encoder_E", "encoder", "c", 3), ("encoder_Ep", "enc_phys", "c", 2),
              ("encoder_Er", "enc_resid", "c", 2), ("decoder_Dp", "dec_phys", "upc", 2),
              ("decoder_Dr", "dec_resid", "upc", 2), ("decoder_D", "decoder", "upc", 2)]
    for theirs, ours, prefix, n in stacks:
        for k in range(n):
            for j in (0, 1):  # conv, GroupNorm
                for p in ("weight", "bias"):
                    mapping[f"encoder.{theirs}.{prefix}{k + 1}.main.{j}.{p}"] = f"{ours}.{k}.{j}.{p}"
    for p in ("weight", "bias"):
        mapping[f"encoder.decoder_D.upc3.{p}"] = f"decoder.2.{p}"
        for theirs, ours in (("F.conv1", "F.0"), ("F.bn1", "F.1"), ("F.conv2", "F.2"),
                             ("convgate", "gate")):
            mapping[f"phycell.cell_list.0.{theirs}.{p}"] = f"phycell.{ours}.{p}"
        for i in range(LAYERS):
            mapping[f"convcell.cell_list.{i}.conv.{p}"] = f"convlstm.{i}.conv.{p}"
    # PhyDNet_Model holds its PhyCell and ConvLSTM twice (itself and inside its encoder): the
    # same tensors under two names (test_phydnet_fixture_aliases_and_moments checks it). K2M's
    # moment matrices feed only the training loss; ours are computed, not stored.
    unused = {f"encoder.{name}" for name in mapping if name.startswith(("phycell.", "convcell."))}
    unused |= {f"k2m.{b}" for b in ("_M0", "_M1", "_invM0", "_invM1")}
    return mapping, unused


def e3dlstm_names():
    # conv_gm (our conv_m) is read, but OpenSTL's memory stays zero, so it multiplies zeros: the
    # fixture cannot tell its weights, nor the memory's forget bias, from any others.
    mapping = {"conv_last.weight": "readout.weight"}
    convs = [("conv_x.0.conv3d", "conv_x"), ("conv_h.0.conv3d", "conv_h"),
             ("conv_gm.0.conv3d", "conv_m"), ("conv_new_cell.0.conv3d", "conv_oc"),
             ("conv_new_gm.0.conv3d", "conv_om"), ("conv_last.conv3d", "conv_mem")]
    for i in range(LAYERS):
        for theirs, ours in convs:
            mapping[f"cell_list.{i}.{theirs}.weight"] = f"cells.{i}.{ours}.weight"
        for p in ("weight", "bias"):
            mapping[f"cell_list.{i}._norm_c_t.{p}"] = f"cells.{i}.norm_c.{p}"
    return mapping, set()


def e3dlstm(openstl: bool = True) -> E3DLSTM:
    return E3DLSTM(16, hidden=16, layers=LAYERS, kernel=(2, 5, 5), window=2, recall=None,
                   memory_flow=not openstl, hw=(16, 16), openstl_compat=openstl)


OPENSTL_RNN = {
    "predrnnpp": GoldenCase(
        "predrnnpp_golden.npz",
        lambda: PredRNNpp(frame_channels=16, hidden=16, layers=LAYERS, filter_size=3),
        predrnnpp_names,
        Tolerance(atol=2e-6, growth=1.35,
                  measured="envelope 7.6e-08 * 1.35^t; "
                           "last step: AVX-512 5.3e-06, f64 3.7e-06, ulp 5.0e-06, SSE4.1 3.0e-06; "
                           "bit-exact on AVX2"),
    ),
    "mim": GoldenCase(
        "mim_golden.npz",
        lambda: MIM(frame_channels=16, hidden=16, layers=LAYERS, filter_size=3, hw=(16, 16)),
        mim_names,
        Tolerance(atol=2e-6, growth=1.25,
                  measured="envelope 6.6e-08 * 1.25^t; "
                           "last step: AVX-512 2.5e-06, f64 1.6e-06, ulp 1.9e-06, AVX2 4.8e-07, "
                           "SSE4.1 1.5e-06"),
    ),
    "predrnnv2": GoldenCase(
        "predrnnv2_golden.npz",
        lambda: PredRNNv2(frame_channels=16, hidden=16, layers=LAYERS, filter_size=3),
        predrnnv2_names,
        Tolerance(atol=2e-6, growth=1.25,
                  measured="envelope 5.3e-08 * 1.25^t; "
                           "last step: AVX-512 1.0e-06, f64 8.4e-07, ulp 1.3e-06, SSE4.1 8.9e-07; "
                           "bit-exact on AVX2"),
    ),
    "mau": GoldenCase(
        "mau_golden.npz",
        lambda: MAU(channels=1, hidden=16, layers=LAYERS, filter_size=3, tau=5, sr_size=4,
                    hw=(32, 32)),
        mau_names,
        Tolerance(atol=1e-6, growth=1.0,
                  measured="envelope 3.4e-08, flat over the steps (AVX-512 3.4e-08, f64 2.3e-08, "
                           "ulp 3.4e-08, SSE4.1 2.3e-08); bit-exact on AVX2"),
    ),
    "phydnet": GoldenCase(
        "phydnet_golden.npz",
        lambda: PhyDNet(channels=1, patch=4, features=64, hidden=16, layers=LAYERS, moment_weight=1.0),
        phydnet_names,
        Tolerance(atol=1e-4, growth=1.0,
                  measured="envelope 3.5e-06, flat over the steps (AVX2 3.5e-06, ulp 2.6e-06, "
                           "SSE4.1 2.5e-06, f64 1.9e-06); bit-exact on AVX-512 and one thread"),
    ),
    "e3dlstm": GoldenCase(
        "e3dlstm_golden.npz", e3dlstm, e3dlstm_names,
        # Flat bound: the envelope saturates by step 9; its end-to-end fit (1.27 per step) only
        # reflects a step 0 at ~2e-8.
        Tolerance(atol=5e-5, growth=1.0,
                  measured="envelope 1.3e-06, flat from step 9 (AVX-512 4.2e-07, f64 5.2e-07, "
                           "ulp 1.3e-06, AVX2 5.7e-07, SSE4.1 8.9e-07, 1 thread 4.2e-07)"),
    ),
}

CASES = {**CONVLSTM_PREDRNN, **OPENSTL_RNN}
