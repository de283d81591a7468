"""ConvLSTM and PredRNN: exact match with OpenSTL's outputs, parameter counts, argument checks."""
from __future__ import annotations

import pytest
import torch

from bench.verify.cases.openstl_rnn import CONVLSTM_PREDRNN as CASES
from bench.verify.golden import check_case
from models.convlstm import convlstm
from models.predrnn import predrnn
from models.registry import _REGISTRY


@pytest.mark.parametrize("name", list(CASES))
def test_matches_openstl_outputs(name):
    report = check_case(CASES[name], name)
    assert len(report["per_step"]) == 19


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_convlstm_parameter_count_at_defaults():
    c, h, k = 1 * 4 * 4, 128, 5  # 64x64x1 frames in 4x4 patches; hidden 128; filter 5
    first = c * 4 * h * k * k + h * 4 * h * k * k  # conv_x + conv_h of cell 0
    later = 2 * h * 4 * h * k * k  # conv_x + conv_h of cells 1-3
    readout = h * c
    expected = first + 3 * later + readout
    assert expected == 11_675_648
    assert n_params(convlstm()) == expected


def test_predrnn_parameter_count_at_defaults():
    c, h, k = 1 * 4 * 4, 128, 5
    shared = h * 4 * h * k * k + h * 3 * h * k * k + 2 * h * h * k * k + 2 * h * h  # h, m, o, mem
    first = c * 7 * h * k * k + shared
    later = h * 7 * h * k * k + shared
    readout = h * c
    expected = first + 3 * later + readout
    assert expected == 23_838_720
    assert n_params(predrnn()) == expected


@pytest.mark.parametrize("build", [convlstm, predrnn])
def test_layer_norm_adds_one_affine_pair_per_gate_conv(build):
    cfg = dict(channels=1, height=16, width=16, patch=2, hidden=8, layers=2, filter_size=3)
    h, hw = 8, 8 * 8  # hidden; patched height * width (16x16 frames in 2x2 patches)
    if build is convlstm:
        normed = 2 * (4 * h) * 2  # conv_x, conv_h: 4h maps each, 2 layers
    else:
        normed = 2 * (7 * h + 4 * h + 3 * h + h)  # conv_x, conv_h, conv_m, conv_o, 2 layers
    plain, with_ln = build(**cfg), build(**cfg, layer_norm=True)
    assert n_params(with_ln) - n_params(plain) == 2 * normed * hw  # weight and bias
    frames = torch.rand(2, 4, 1, 16, 16)
    pred = with_ln(frames, in_len=2, out_len=2)
    assert pred.future.shape == (2, 2, 1, 16, 16) and pred.warmup.shape == (2, 1, 1, 16, 16)
    with pytest.raises(ValueError, match="8x8"):
        with_ln(torch.rand(2, 4, 1, 32, 32), in_len=2, out_len=2)


@pytest.mark.parametrize("build", [convlstm, predrnn])
def test_rollout_shapes_and_teacher_forcing(build):
    model = build(channels=2, height=8, width=12, patch=2, hidden=4, layers=3, filter_size=3)
    frames = torch.rand(3, 7, 2, 8, 12)
    pred = model(frames, in_len=3, out_len=4)
    assert pred.future.shape == (3, 4, 2, 8, 12) and pred.warmup.shape == (3, 2, 2, 8, 12)
    # Feeding the true frames after the window changes later predictions, not earlier ones.
    forced = model(frames, 3, 4, truth_mask=torch.ones(3, 3, dtype=torch.bool))
    assert torch.equal(forced.future[:, :1], pred.future[:, :1])
    assert not torch.allclose(forced.future[:, 1:], pred.future[:, 1:])


@pytest.mark.parametrize("build", [convlstm, predrnn])
@pytest.mark.parametrize(
    "override, shown",
    [(dict(hidden=0), "hidden must be a positive integer; got 0"),
     (dict(layers=-1), "layers must be a positive integer; got -1"),
     (dict(filter_size=4), "filter_size must be odd .* got 4"),
     (dict(filter_size=2.5), "filter_size must be a positive integer; got 2.5"),
     (dict(channels=True), "channels must be a positive integer; got True"),
     (dict(patch=3), "patch size 3 does not divide the frame size 64x64"),
     (dict(height=0), "height must be a positive integer; got 0"),
     (dict(layer_norm="yes"), "layer_norm must be True or False .* got 'yes'")],
)
def test_bad_arguments_name_the_value(build, override, shown):
    with pytest.raises(ValueError, match=shown):
        build(**override)


def test_registered_with_family_and_paper():
    # Read the registry table directly: discovering every model file is another test's job.
    assert _REGISTRY["convlstm"].build is convlstm
    assert _REGISTRY["convlstm"].family == "ConvLSTM" and "Shi" in _REGISTRY["convlstm"].paper
    assert _REGISTRY["predrnn"].build is predrnn
    assert _REGISTRY["predrnn"].family == "PredRNN" and "Wang" in _REGISTRY["predrnn"].paper
