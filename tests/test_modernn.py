"""MoDeRNN: parameter counts, the authors' golden outputs, DCB options, argument checks."""
from __future__ import annotations

import pytest
import torch

from bench.verify.cases.modernn import GOLDEN, authors_name, authors_names
from bench.verify.golden import check_case
from models.modernn import MoDeRNN, modernn
from models.patch import Patched
from models.registry import create_model, get_spec


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_at_the_authors_setting():
    model = modernn()
    assert isinstance(model, Patched) and model.patch == 4
    core = model.core
    assert n_params(model) == 5_867_600
    assert [n_params(cell) for cell in core.cells] == [1_466_368] * 4
    assert n_params(core.embed) == 1_088
    assert n_params(core.output) == 1_040
    assert n_params(modernn(filter_size=5)) == 7_964_752


def test_registered_under_modernn():
    assert get_spec("modernn").family == "MoDeRNN"
    assert n_params(create_model("modernn")) == 5_867_600


def test_authors_name_mapping():
    assert authors_name("cells.1.x_from_h.2.norm.bias") == "lstm.1.conv77_H.1.bias"
    assert authors_name("cells.0.h_from_x.0.conv.weight") == "lstm.0.conv33_X.0.weight"
    assert authors_name("cells.0.gate_h.norm.weight") == "lstm.0.conv_h2h.1.weight"
    assert authors_name("cells.3.norm_c.weight") == "lstm.3.norm_cell.weight"
    assert authors_name("embed.bias") == "embed.bias"


def test_matches_the_authors_code():
    core = GOLDEN.build()
    assert n_params(core) == 368_160
    assert len(authors_names()[0]) == len(list(core.parameters())), "names are one to one"
    report = check_case(GOLDEN, "modernn", core=core)
    assert len(report["per_step"]) == 19


def test_forward_through_the_patch_wrapper():
    model = modernn(height=16, width=16, hidden=8, layers=2)
    frames = torch.rand(2, 5, 1, 16, 16)
    pred = model(frames, in_len=3, out_len=2)
    assert pred.future.shape == (2, 2, 1, 16, 16)
    assert pred.warmup.shape == (2, 2, 1, 16, 16)
    with pytest.raises(ValueError, match="8x8"):
        model(torch.rand(1, 3, 1, 32, 32), in_len=2, out_len=1)


def dcb_params(hidden: int, hw: int, kernels) -> int:
    """Six-per-default DCB: two convs per kernel (on x, on h), each with a [C, H, W] LayerNorm."""
    return sum(2 * (hidden * hidden * k * k + 2 * hidden * hw) for k in kernels)


def test_dcb_kernels_are_honoured():
    hidden, hw = 8, 8 * 8
    base = dict(channels=1, height=32, width=32, patch=4, hidden=hidden, layers=1)
    full = n_params(modernn(**base))
    for kernels in [(3, 5), (1,), (3, 5, 7, 9)]:
        expected = full - dcb_params(hidden, hw, (3, 5, 7)) + dcb_params(hidden, hw, kernels)
        assert n_params(modernn(**base, dcb_kernels=kernels)) == expected
    assert n_params(modernn(**base, dcb_kernels=(3, 5))) == full - 2 * (8 * 8 * 49 + 2 * 8 * 64)


def test_dcb_rounds_are_honoured():
    torch.manual_seed(0)
    core = MoDeRNN(2, 2, 8, 8, hidden=4, layers=1)
    cell = core.cells[0]
    x, h = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8)
    outs = []
    for rounds in range(1, 5):
        cell.dcb_rounds = rounds
        outs.append(cell.detail_context(x, h))
    # round 1 rescales only x; round 2 then rescales only h; round 3 only x again.
    assert torch.equal(outs[0][1], h) and not torch.equal(outs[0][0], x)
    assert torch.equal(outs[1][0], outs[0][0]) and not torch.equal(outs[1][1], h)
    assert torch.equal(outs[2][1], outs[1][1]) and not torch.equal(outs[2][0], outs[1][0])
    # the constructor argument reaches every cell and changes the forward pass
    frames = torch.rand(1, 3, 2, 8, 8)
    a = MoDeRNN(2, 2, 8, 8, hidden=4, layers=2, dcb_rounds=5)
    b = MoDeRNN(2, 2, 8, 8, hidden=4, layers=2, dcb_rounds=2)
    b.load_state_dict(a.state_dict())
    assert [c.dcb_rounds for c in b.cells] == [2, 2]
    with torch.no_grad():
        assert not torch.allclose(a(frames, 2, 1).future, b(frames, 2, 1).future)


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        (dict(filter_size=4), "4"),
        (dict(dcb_kernels=(3, 6)), "6"),
        (dict(dcb_kernels=()), r"\(\)"),
        (dict(hidden=0), "hidden.*0"),
        (dict(layers=-1), "layers.*-1"),
        (dict(dcb_rounds=0), "dcb_rounds.*0"),
        (dict(patch=3), "3"),
        (dict(channels=0), "channels.*0"),
        (dict(hidden=2.5), "2.5"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        modernn(**kwargs)
