"""E3D-LSTM, MAU and PhyDNet: parameter counts, shapes, gradients and one equation check each.

The shared suite (tests/test_model_zoo.py) covers what every model must do; this file pins what
is particular to these three.
"""
import math

import pytest
import torch

import models
from models.e3dlstm import recall
from models.phydnet import moment_matrix, moment_targets

SMALL = {
    "e3dlstm": dict(height=16, width=16, patch=4, hidden=4, layers=2),
    "mau": dict(height=16, width=16, hidden=4, layers=2, sr_size=4),
    "phydnet": dict(height=16, width=16, features=32, hidden=8, layers=2),
}


def build(name, seed=0, **overrides):
    torch.manual_seed(seed)
    return models.create_model(name, **{**SMALL[name], **overrides})


def clips(length, batch=2, size=16, seed=1):
    return torch.rand(batch, length, 1, size, size, generator=torch.Generator().manual_seed(seed))


def count(name):
    with torch.device("meta"):  # no memory or init time for the 51M-parameter default
        return sum(p.numel() for p in models.create_model(name).parameters())


def test_default_parameter_counts():
    # E3D-LSTM (patch 4 -> 16 channels, hidden 128, 4 layers, 2x5x5 = 50 taps, 2 x 16 x 16 states):
    # per cell conv_h + conv_m 2 * 128*512*50, conv_oc + conv_om 2 * 128*128*50, conv_mem 256*128,
    # LN 2 * 128*2*16*16; conv_x 16*896*50 (cell 0) or 128*896*50; readout 128*16*2.
    shared = 2 * 128 * 512 * 50 + 2 * 128 * 128 * 50 + 256 * 128 + 2 * 128 * 2 * 16 * 16
    e3d = (16 + 3 * 128) * 896 * 50 + 4 * shared + 128 * 16 * 2
    assert e3d == 51_347_456  # = OpenSTL's E3DLSTM_Model at configs/mmnist/E3DLSTM.py
    assert count("e3dlstm") == e3d
    # MAU (hidden 64, filter 5, sr_size 4 -> 16x16 cells, conv biases, LN affine over [C, 16, 16]):
    # per cell 2 * (64*192*25 + 192 + 2*192*256) + 2 * (64*64*25 + 64 + 2*64*256); encoder
    # 1*64 + 64 + 2 * (64*64*9 + 64); decoder 2 * (64*64*9 + 64); readout 64 + 1.
    cell = 2 * (64 * 192 * 25 + 192 + 2 * 192 * 256) + 2 * (64 * 64 * 25 + 64 + 2 * 64 * 256)
    mau = 4 * cell + 128 + 4 * (64 * 64 * 9 + 64) + 65
    assert mau == 4_475_329  # OpenSTL: 4,483,588 with its unused merge (8,256) and conv_last_sr (3)
    assert count("mau") == mau
    # PhyDNet (every conv with bias; GroupNorms 2 per channel): encoder 28,320, E_p = E_r =
    # D_p = D_r = 2 * (64*64*9 + 64 + 128), decoder 28,129, PhyCell 7x7 64->49, GroupNorm(7, 49),
    # 1x1 49->64, gate 3x3 128->64; ConvLSTM (64+128)->512, (128+128)->512, (128+64)->256, 3x3.
    encoder = (9 * 32 + 32 + 64) + (32 * 32 * 9 + 32 + 64) + (32 * 64 * 9 + 64 + 128)
    decoder = (64 * 32 * 9 + 32 + 64) + (32 * 32 * 9 + 32 + 64) + (32 * 9 + 1)
    phycell = 64 * 49 * 49 + 49 + 98 + 49 * 64 + 64 + 128 * 64 * 9 + 64
    convlstm = 192 * 512 * 9 + 512 + 256 * 512 * 9 + 512 + 192 * 256 * 9 + 256
    phydnet = encoder + 4 * 2 * (64 * 64 * 9 + 64 + 128) + decoder + phycell + convlstm
    assert phydnet == 3_091_732  # = OpenSTL's PhyDNet_Model
    assert count("phydnet") == phydnet


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("in_len,out_len", [(10, 10), (5, 3)])
def test_output_shapes(name, in_len, out_len):
    model = build(name).eval()
    with torch.no_grad():
        pred = model(clips(in_len), in_len, out_len)
    assert pred.future.shape == (2, out_len, 1, 16, 16)
    assert pred.warmup.shape == (2, in_len - 1, 1, 16, 16)
    assert (pred.aux_loss is not None) == (name == "phydnet")


@pytest.mark.parametrize("name", list(SMALL))
def test_gradients_reach_every_parameter(name):
    model = build(name).train()
    frames = clips(7)
    pred = model(frames, 4, 3)
    loss = (pred.future - frames[:, 4:]).square().mean() + pred.warmup.square().mean()
    if pred.aux_loss is not None:
        loss = loss + pred.aux_loss
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"parameters with no or zero gradient: {dead}"


def test_e3d_recall_is_attention_over_positions():
    """RECALL: each (depth, y, x) query attends over every position of every stored cell state."""
    g = torch.Generator().manual_seed(0)
    query, history = torch.randn(2, 3, 2, 2, 3, generator=g), torch.randn(2, 3, 6, 2, 3, generator=g)
    expected = torch.empty_like(query)
    for b in range(2):
        keys = [history[b, :, d, y, x] for d in range(6) for y in range(2) for x in range(3)]
        keys = torch.stack(keys)  # [36, C]
        for d in range(2):
            for y in range(2):
                for x in range(3):
                    weights = torch.softmax(keys @ query[b, :, d, y, x], dim=0)  # no 1/sqrt(C)
                    expected[b, :, d, y, x] = weights @ keys
    torch.testing.assert_close(recall(query, history), expected)


@pytest.mark.parametrize("limit", [None, 3])
def test_e3d_keeps_the_window_and_the_recalled_cells(limit):
    """The bottom cell sees frames (t - 1, t); the recall sees the last `recall` past cells."""
    core = build("e3dlstm", recall=limit).core.eval()  # window 2
    frames = torch.rand(2, 6, 16, 4, 4)  # as the core sees 16x16 frames at patch 4
    state, cells = None, []
    with torch.no_grad():
        for t in range(6):
            cells.append(torch.zeros(2, 4, 2, 4, 4) if state is None else state[2][1])
            _, state = core.step(frames[:, t], state)
            past, _, _, _, histories = state
            assert len(past) == 1 and torch.equal(past[0], frames[:, t])
            kept = cells if limit is None else cells[-limit:]
            assert torch.equal(histories[1], torch.cat(kept, dim=2)), t


def test_e3d_memory_flows_unless_disabled():
    """With memory_flow=False (the reference code) conv_m only ever sees zeros."""
    for flow in (True, False):
        model = build("e3dlstm", memory_flow=flow)
        frames = clips(6)
        model(frames, 3, 3).future.square().mean().backward()
        grads = [cell.conv_m.weight.grad.abs().sum().item() for cell in model.core.cells]
        assert all(g > 0 for g in grads) if flow else all(g == 0 for g in grads)


def test_mau_attends_over_the_last_tau_states():
    tau = 3
    core = build("mau", tau=tau).core.eval()
    frames = clips(7)
    state, t_out, s_in = None, [], []
    with torch.no_grad():
        for t in range(7):
            s_in.append(core.encoder(frames[:, t]))
            _, state = core.step(frames[:, t], state)
            t_out.append(state[0][0])
            zeros = [torch.zeros_like(s_in[0])] * tau
            for stored, expected in [(state[1][0], (zeros + t_out)[-tau:]),
                                     (state[2][0], (zeros + s_in)[-tau:])]:
                assert len(stored) == tau
                assert all(torch.equal(a, b) for a, b in zip(stored, expected, strict=True)), t
        # The weights: softmax over the tau states of <S_j, conv_s_next(S_now)> / sqrt(C * H * W).
        cell, s_now = core.cells[0], s_in[-1]
        t_hist, s_hist = torch.stack(state[1][0]), torch.stack(state[2][0])
        t_att, alpha = cell.attention(s_now, t_hist, s_hist)
        q = cell.conv_s_next(s_now)
        for b in range(2):
            scores = torch.stack([(s_hist[j, b] * q[b]).sum() for j in range(tau)])
            weights = torch.softmax(scores / math.sqrt(4 * 4 * 4), dim=0)
            torch.testing.assert_close(alpha[:, b], weights)
            torch.testing.assert_close(t_att[b], sum(weights[j] * t_hist[j, b] for j in range(tau)))


def test_phydnet_moments_and_constraint_loss():
    # Moments of the central difference along the width axis, (k[3, 4] - k[3, 2]) / 2:
    # m[i, j] = sum_pq (p-3)^i / i! (q-3)^j / j! k[p, q] -> m[0, 1] = 1, m[0, 3] = 1/6, m[i>0] = 0.
    kernel = torch.zeros(7, 7, dtype=torch.float64)
    kernel[3, 2], kernel[3, 4] = -0.5, 0.5
    m = moment_matrix() @ kernel @ moment_matrix().T
    expected = torch.zeros(7, 7, dtype=torch.float64)
    expected[0, 1], expected[0, 3], expected[0, 5] = 1.0, 1 / 6, 1 / 120
    torch.testing.assert_close(m, expected)

    # Kernel n = 7 i + j should carry the single moment (i, j) (OpenSTL's `constraints`).
    targets = moment_targets()
    for n in range(49):
        assert targets[n, n // 7, n % 7] == 1 and targets[n].sum() == 1

    model = build("phydnet", moment_weight=2.0)
    cell = model.core.phycell
    frames = clips(5)
    loss = model(frames, 3, 2).aux_loss
    assert torch.isfinite(loss) and loss > 0  # default init is far from the moment targets
    torch.testing.assert_close(loss, 2.0 * cell.moment_loss())
    # Kernels built from the targets (k = M^-1 e_n M^-T for kernel n) meet the constraint.
    inv = torch.linalg.inv(moment_matrix())
    matched = (inv @ moment_targets() @ inv.T).float()  # [49, 7, 7]
    with torch.no_grad():
        cell.F[0].weight.copy_(matched[:, None].expand_as(cell.F[0].weight))
    assert cell.moment_loss() < 1e-10
    with torch.no_grad():
        cell.F[0].weight[5, 0, 1, 1] += 0.1
    assert cell.moment_loss() > 1e-6


@pytest.mark.parametrize("name,kwargs,bad", [
    ("e3dlstm", {"window": 0}, "0"),
    ("e3dlstm", {"filter_size": 4}, "4"),
    ("e3dlstm", {"recall": -1}, "-1"),
    ("e3dlstm", {"patch": 3}, "3"),
    ("e3dlstm", {"openstl_compat": "yes"}, "yes"),
    ("mau", {"sr_size": 6, "height": 48, "width": 48}, "power of two; got 6"),
    ("mau", {"sr_size": 8, "height": 16, "width": 16, "patch": 4}, "sr_size 8"),
    ("mau", {"tau": 0}, "0"),
    ("phydnet", {"patch": 8}, "8"),
    ("phydnet", {"features": 48}, "48"),
    ("phydnet", {"moment_weight": -1.0}, "-1.0"),
])
def test_bad_arguments_are_named(name, kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        models.create_model(name, **kwargs)
