"""PredRNN++, MIM and PredRNN-V2: parameter counts, shapes, the decoupling loss, gradients, and
one cell equation each, recomputed here from the cell's own convolution outputs."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from bench.config import get_preset
from bench.grid.request import model_config
from models.mim import MIM, MIMBlock, mim
from models.predrnn import SpatioTemporalLSTMCell
from models.predrnnpp import CausalLSTMCell, GradientHighwayUnit, PredRNNpp, predrnnpp
from models.predrnnv2 import DecoupledSTLSTMCell, PredRNNv2, predrnnv2
from models.registry import get_spec

BUILDS = [predrnnpp, mim, predrnnv2]
IDS = ["predrnnpp", "mim", "predrnnv2"]
SMALL = dict(channels=1, height=16, width=16, patch=2, hidden=8, layers=3, filter_size=3)
sig, tanh = torch.sigmoid, torch.tanh


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def split(t: torch.Tensor, n: int):
    return torch.chunk(t, n, dim=1)


def randomize(module: torch.nn.Module) -> None:
    """Random weights of unit-ish scale, so every gate chunk differs (zero peepholes included)."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.3)


# -- parameter counts at the defaults (OpenSTL's Moving MNIST configs) -------------------------

C, H, K, HW = 1 * 4 * 4, 128, 5, 16 * 16  # 4x4 patches of 64x64x1; hidden; filter; patched H*W
KK = K * K


def test_predrnnpp_parameter_count_at_defaults():
    rest = H * 4 * H * KK + 2 * H * 3 * H * KK + H * 4 * H * KK + H * H * KK + 2 * H * H
    #      conv_h          conv_c, conv_m        conv_c2m          conv_om      conv_mem (1x1)
    first, later = C * 7 * H * KK + rest, H * 7 * H * KK + rest  # + conv_x
    ghu = 2 * H * 2 * H * KK
    expected = first + 3 * later + ghu + H * C  # readout
    assert (first, later, ghu) == (6_535_168, 9_043_968, 1_638_400)
    assert expected == 35_307_520  # OpenSTL: + 4 unused conv_o (4 * 819,200) = 38,584,320
    assert n_params(predrnnpp()) == expected


def test_mim_parameter_count_at_defaults():
    stlstm = C * 7 * H * KK + H * 4 * H * KK + H * 3 * H * KK + 2 * H * H * KK + 2 * H * H
    peephole_lstm = 2 * H * 4 * H * KK + 3 * H * HW  # conv_x, conv_h; w_if [2H,16,16], w_o [H,16,16]
    block = H * 4 * H * KK + H * 3 * H * KK + H * 4 * H * KK + 2 * H * H + peephole_lstm
    #       conv_x           conv_h           conv_m           conv_mem    MIM-S
    expected = stlstm + 3 * (block + peephole_lstm) + H * C  # 3 blocks, 3 MIM-Ns, readout
    assert (stlstm, peephole_lstm, block) == (4_077_568, 3_375_104, 7_913_472)
    assert expected == 37_945_344  # OpenSTL: + 3 unused MIMN.conv_last (3 * 32,768) = 38,043,648
    assert n_params(mim()) == expected


def test_predrnnv2_parameter_count_at_defaults():
    shared = H * 4 * H * KK + H * 3 * H * KK + 2 * H * H * KK + 2 * H * H  # conv_h, m, o, mem
    predrnn = (C * 7 * H * KK + shared) + 3 * (H * 7 * H * KK + shared) + H * C
    expected = predrnn + H * H  # + the shared 1x1 adapter
    assert predrnn == 23_838_720 and expected == 23_855_104
    assert n_params(predrnnv2()) == expected


# -- shapes, aux loss, gradients ---------------------------------------------------------------

@pytest.mark.parametrize("build", BUILDS, ids=IDS)
@pytest.mark.parametrize("in_len, out_len", [(10, 10), (5, 3)])
def test_output_shapes(build, in_len, out_len):
    model = build(**SMALL).eval()
    with torch.no_grad():
        pred = model(torch.rand(2, in_len + out_len, 1, 16, 16), in_len, out_len)
    assert pred.future.shape == (2, out_len, 1, 16, 16)
    assert pred.warmup.shape == (2, in_len - 1, 1, 16, 16)


def test_predrnnv2_aux_loss_only_in_training():
    torch.manual_seed(0)
    model = predrnnv2(**SMALL)
    frames = torch.rand(2, 8, 1, 16, 16)
    aux = model.train()(frames, 4, 4).aux_loss
    assert aux is not None and aux.dim() == 0 and torch.isfinite(aux) and aux.item() > 0
    assert aux.item() <= 0.1  # decouple_beta * mean |cos|, and |cos| <= 1
    with torch.no_grad():
        assert model.eval()(frames, 4, 4).aux_loss is None
    assert predrnnv2(**SMALL, decouple_beta=0.0).train()(frames, 4, 4).aux_loss.item() == 0.0
    # The loss trains the cell through both increments: one step, one layer, so conv_x's
    # i (rows 0..h) reaches the loss only through delta_c and its i' (rows 3h..4h) through delta_m.
    one = predrnnv2(**{**SMALL, "layers": 1}).train()
    one(frames, 1, 1).aux_loss.backward()
    grad = one.core.cells[0].conv_x[0].weight.grad
    assert grad[:8].abs().sum() > 0 and grad[24:32].abs().sum() > 0


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_gradients_reach_every_parameter(build):
    torch.manual_seed(0)
    model = build(**SMALL).train()
    frames = torch.rand(2, 7, 1, 16, 16)
    pred = model(frames, 4, 3, truth_mask=torch.rand(2, 5) < 0.5)  # reverse-style mask
    loss = pred.future.square().mean() + pred.warmup.square().mean()
    if pred.aux_loss is not None:
        loss = loss + pred.aux_loss
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


# -- one cell equation per model, recomputed from the conv outputs -----------------------------

def cell_inputs(in_channels: int, hidden: int, n_states: int):
    x = torch.randn(2, in_channels, 6, 6)
    return [x] + [torch.randn(2, hidden, 6, 6) for _ in range(n_states)]


def test_causal_lstm_cell_equations():
    torch.manual_seed(1)
    cell = CausalLSTMCell(3, 4, 3, None)
    randomize(cell)
    x, h, c, m = cell_inputs(3, 4, 3)
    i_x, f_x, g_x, i_x2, f_x2, g_x2, o_x = split(cell.conv_x(x), 7)
    i_h, f_h, g_h, o_h = split(cell.conv_h(h), 4)
    i_c, f_c, g_c = split(cell.conv_c(c), 3)
    i_m, f_m, m_m = split(cell.conv_m(m), 3)
    c_new = sig(f_x + f_h + f_c + 1.0) * c + sig(i_x + i_h + i_c) * tanh(g_x + g_h + g_c)
    i_2, g_2, f_2, o_2 = split(cell.conv_c2m(c_new), 4)  # OpenSTL's c2m order: i, g, f, o
    m_new = sig(f_x2 + f_m + f_2 + 1.0) * tanh(m_m) + sig(i_x2 + i_m + i_2) * tanh(g_x2 + g_2)
    h_new = tanh(o_x + o_h + o_2 + cell.conv_om(m_new)) * tanh(cell.conv_mem(torch.cat([c_new, m_new], 1)))
    for got, want in zip(cell(x, h, c, m), (h_new, c_new, m_new), strict=True):
        torch.testing.assert_close(got, want)


def test_gradient_highway_unit_feeds_layer_two():
    torch.manual_seed(2)
    ghu = GradientHighwayUnit(4, 3, None)
    assert all(p.abs().max() <= 0.001 for p in ghu.parameters())  # OpenSTL's uniform init
    randomize(ghu)
    x, z = cell_inputs(4, 4, 1)
    p, u = split(ghu.conv_x(x) + ghu.conv_z(z), 2)
    torch.testing.assert_close(ghu(x, z), sig(u) * tanh(p) + (1 - sig(u)) * z)
    # In the stack, layer 2 reads the GHU's output, not layer 1's hidden state.
    core = PredRNNpp(frame_channels=4, hidden=4, layers=3, filter_size=3)
    seen = {}
    core.cells[1].register_forward_hook(lambda mod, args, out: seen.update(x=args[0]))
    core.highway.register_forward_hook(lambda mod, args, out: seen.update(z=out, h=args[0]))
    core.step(torch.rand(2, 4, 6, 6), None)
    assert torch.equal(seen["x"], seen["z"]) and not torch.equal(seen["x"], seen["h"])


def test_mim_block_equations():
    torch.manual_seed(3)
    block = MIMBlock(4, 3, (6, 6), None)
    randomize(block)
    x, n_h, h, c, m, s = cell_inputs(4, 4, 5)
    i_x, g_x, f_x, o_x = split(block.conv_x(x), 4)
    i_t, g_t, o_t = split(block.conv_h(h), 3)
    i_s, g_s, f_s, o_s = split(block.conv_m(m), 4)
    m_new = sig(f_x + f_s + 1.0) * m + sig(i_x + i_s) * tanh(g_x + g_s)
    # MIM-S: input n_h (from MIM-N), hidden c, cell s; peepholes w_i, w_f from s, w_o from s'.
    st = block.stationary
    a_x, b_x, e_x, d_x = split(st.conv_x(n_h), 4)  # i, g, f, o
    a_h, b_h, e_h, d_h = split(st.conv_h(c), 4)
    w_i, w_f = st.peep_if[:4], st.peep_if[4:]
    s_new = sig(e_x + e_h + w_f * s + 1.0) * s + sig(a_x + a_h + w_i * s) * tanh(b_x + b_h)
    kept = sig(d_x + d_h + st.peep_o * s_new) * tanh(s_new)
    c_new = kept + sig(i_x + i_t) * tanh(g_x + g_t)
    h_new = sig(o_x + o_t + o_s) * tanh(block.conv_mem(torch.cat([c_new, m_new], 1)))
    for got, want in zip(block(x, n_h, h, c, m, s), (h_new, c_new, m_new, s_new), strict=True):
        torch.testing.assert_close(got, want)


def test_mim_nonstationary_chain():
    """MIM-N is skipped at t = 0, then reads h_0(t) - h_0(t-1) (layer 1) or the MIM-N below."""
    torch.manual_seed(4)
    core = MIM(frame_channels=4, hidden=4, layers=3, filter_size=3, hw=(6, 6))
    randomize(core)
    frames = torch.rand(2, 2, 4, 6, 6)
    _, s0 = core.step(frames[:, 0], None)
    assert all(t.abs().sum() == 0 for t in s0[4] + s0[5])  # MIM-N states untouched at t = 0
    _, s1 = core.step(frames[:, 1], s0)
    n_h1, n_c1 = core.nonstationary[0](s1[0][0] - s0[0][0], s0[4][0], s0[5][0])
    n_h2, n_c2 = core.nonstationary[1](n_h1, s0[4][1], s0[5][1])
    for got, want in zip(s1[4] + s1[5], (n_h1, n_h2, n_c1, n_c2), strict=True):
        torch.testing.assert_close(got, want)


def test_mim_state_does_not_leak_between_sequences():
    # OpenSTL keeps MIM-S's cell on the module across calls; here each sequence starts at zero.
    torch.manual_seed(5)
    model = mim(**SMALL)
    randomize(model)
    a, b = torch.rand(2, 6, 1, 16, 16), torch.rand(3, 6, 1, 16, 16)
    with torch.no_grad():
        first = model(a, 3, 3).future
        model(b, 3, 3)
        torch.testing.assert_close(model(a, 3, 3).future, first, rtol=0, atol=0)


def test_predrnnv2_cell_and_decoupling_term():
    torch.manual_seed(6)
    cell = DecoupledSTLSTMCell(3, 4, 3, None)
    randomize(cell)
    x, h, c, m = cell_inputs(3, 4, 3)
    h_new, c_new, m_new, delta_c, delta_m = cell(x, h, c, m)
    for got, want in zip((h_new, c_new, m_new), SpatioTemporalLSTMCell.forward(cell, x, h, c, m),
                         strict=True):
        torch.testing.assert_close(got, want)  # the same ST-LSTM as PredRNN
    i_x, f_x, g_x, i_x2, f_x2, g_x2, _ = split(cell.conv_x(x), 7)
    i_h, f_h, g_h, _ = split(cell.conv_h(h), 4)
    i_m, f_m, g_m = split(cell.conv_m(m), 3)
    torch.testing.assert_close(delta_c, sig(i_x + i_h) * tanh(g_x + g_h))
    torch.testing.assert_close(delta_m, sig(i_x2 + i_m) * tanh(g_x2 + g_m))
    torch.testing.assert_close(c_new - delta_c, sig(f_x + f_h + 1.0) * c)  # forget bias 1
    torch.testing.assert_close(m_new - delta_m, sig(f_x2 + f_m + 1.0) * m)
    core = PredRNNv2(frame_channels=3, hidden=4, layers=1, filter_size=3)
    a, b = (core.adapter(d).flatten(2) for d in (delta_c, delta_m))
    cos = (a * b).sum(2) / (a.norm(dim=2) * b.norm(dim=2))  # one cosine per (sample, channel)
    torch.testing.assert_close(core.decoupling(delta_c, delta_m), cos.abs().mean())
    assert torch.allclose(F.normalize(a, dim=2).norm(dim=2), torch.ones(2, 4))


# -- arguments and presets ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "build, override, shown",
    [(predrnnpp, dict(layers=1), "layers >= 2 .* got 1"),
     (mim, dict(layers=1), "layers >= 2 .* got 1"),
     (mim, dict(hidden=0), "hidden must be a positive integer; got 0"),
     (predrnnpp, dict(filter_size=4), "filter_size must be odd .* got 4"),
     (predrnnv2, dict(patch=3), "patch size 3 does not divide"),
     (predrnnv2, dict(decouple_beta=-0.1), "decouple_beta .* got -0.1"),
     (predrnnv2, dict(decouple_beta="0.1"), "decouple_beta .* got '0.1'")],
)
def test_bad_arguments_name_the_value(build, override, shown):
    with pytest.raises(ValueError, match=shown):
        build(**override)


def test_mim_rejects_other_frame_sizes():
    model = mim(**SMALL)
    with pytest.raises(ValueError, match="8x8 .* 16x16"):
        model(torch.rand(1, 4, 1, 32, 32), 2, 2)


@pytest.mark.parametrize("build", BUILDS, ids=IDS)
def test_layer_norm_variant_runs(build):
    # OpenSTL's own GHU cannot run with layer norm (its norm has half the conv's channels).
    model = build(channels=1, height=8, width=8, patch=2, hidden=4, layers=2, filter_size=3,
                  layer_norm=True)
    assert n_params(model) > n_params(build(channels=1, height=8, width=8, patch=2, hidden=4,
                                            layers=2, filter_size=3))
    pred = model(torch.rand(1, 4, 1, 8, 8), 2, 2)
    assert pred.future.shape == (1, 2, 1, 8, 8)


@pytest.mark.parametrize("name", IDS)
def test_presets_build(name):
    data = SimpleNamespace(channels=1, height=32, width=32, in_len=4, out_len=4)
    for preset in ("smoke", "quick"):
        config = model_config(name, get_preset(preset), data, {})
        if name != "predrnnv2":  # PredRNN++ and MIM need two layers, even in the smoke preset
            assert config["layers"] >= 2
        get_spec(name).build(**config)
