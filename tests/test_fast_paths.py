"""Fast paths (models/fast.py, models/fused.py): for every model and every fast path it offers, in
float64, the outputs and every parameter's gradient equal the reference formulation's; the
parameters and state dict are unchanged; a golden fixture still matches with them on."""
from __future__ import annotations

import copy
from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from bench.verify.cases import CASES as GOLDEN_CASES
from bench.verify.golden import check_case
from models import fused
from models.fast import FAST_PATHS, enable, supported
from models.registry import create_model

REL = 1e-12  # float64: the reformulations differ only in summation order

# model -> constructor arguments (small: 8x8 states) and the fast paths it must offer
CASES = {
    "modernn": (dict(height=16, width=16, patch=2, hidden=4, layers=1), ["fused_norm", "fused_convs"]),
    "convlstm": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3), ["fused_convs"]),
    "convlstm_ln": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3,
                         layer_norm=True), ["fused_norm", "fused_convs"]),
    "predrnn": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3), ["fused_convs"]),
    "predrnn_ln": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3,
                        layer_norm=True), ["fused_norm"]),
    "predrnnpp": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3), ["fused_convs"]),
    "predrnnpp_ln": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3,
                          layer_norm=True), ["fused_norm", "fused_convs"]),  # the GHU's pair
    "predrnnv2": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3), ["fused_convs"]),
    "mim": (dict(height=16, width=16, patch=2, hidden=4, layers=3, filter_size=3), ["fused_convs"]),
    "mim_ln": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3,
                    layer_norm=True), ["fused_norm", "fused_convs"]),  # MIM-N / MIM-S pairs
    "mau": (dict(height=16, width=16, patch=1, hidden=4, layers=2, filter_size=3, tau=2, sr_size=2),
            ["fused_norm", "fused_convs"]),
    "e3dlstm": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3),
                ["fused_norm", "fused_convs"]),
    "e3dlstm_openstl": (dict(height=16, width=16, patch=2, hidden=4, layers=2, filter_size=3,
                             openstl_compat=True), ["fused_norm", "fused_convs"]),
    "saconvlstm": (dict(height=16, width=16, patch=2, hidden=4, layers=2, attn_channels=2),
                   ["fused_convs"]),
    "phydnet": (dict(height=16, width=16, patch=2, hidden=4, layers=2, features=32), []),
}


def build(case: str) -> torch.nn.Module:
    kwargs, _ = CASES[case]
    torch.manual_seed(0)
    model = create_model(case.split("_")[0], **kwargs).double()
    with torch.no_grad():  # non-trivial norm affines and peepholes (they start at 1, 0)
        for name, p in model.named_parameters():
            if "norm" in name or "peep" in name:
                p.add_(0.3 * torch.randn_like(p))
    return model


def loss_and_grads(model: torch.nn.Module, frames: torch.Tensor):
    model.train()
    model.zero_grad(set_to_none=True)
    mask = torch.tensor([[True, False], [False, True]])
    pred = model(frames, 3, 3, mask)
    loss = pred.future.square().sum() + pred.future.sum()
    if pred.warmup is not None:
        loss = loss + pred.warmup.square().sum()
    if pred.aux_loss is not None:
        loss = loss + pred.aux_loss
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    return pred.future.detach(), grads


def assert_close(got: torch.Tensor, want: torch.Tensor, what: str, floor: float = 0.0) -> None:
    """max |got - want| <= REL * max |want| (or REL * floor where want is smaller: a gradient that
    is zero in exact arithmetic, e.g. of an attention key's bias, is rounding noise)."""
    scale = max(want.abs().max().item(), floor)
    err = (got - want).abs().max().item()
    assert err <= REL * max(scale, 1e-300), f"{what}: max |diff| {err:.3e}, max |ref| {scale:.3e}"


@pytest.mark.parametrize("case", list(CASES))
def test_fast_paths_are_exact_in_float64(case):
    reference, offered = build(case), CASES[case][1]
    assert supported(reference) == offered
    frames = torch.rand(2, 6, *reference_shape(case), generator=torch.Generator().manual_seed(1),
                        dtype=torch.float64)
    want, want_grads = loss_and_grads(reference, frames)
    for names in [[n] for n in offered] + ([offered] if len(offered) > 1 else []):
        fast = copy.deepcopy(reference)
        assert enable(fast, names) == names
        got, grads = loss_and_grads(fast, frames)
        assert_close(got, want, f"{case} {names} outputs")
        assert grads.keys() == want_grads.keys()
        floor = 1e-6 * max(g.abs().max().item() for g in want_grads.values() if g is not None)
        for name, grad in grads.items():
            assert (grad is None) == (want_grads[name] is None), name
            if grad is not None:
                assert_close(grad, want_grads[name], f"{case} {names} grad of {name}", floor)
        assert list(fast.state_dict()) == list(reference.state_dict())
        assert [n for n, _ in fast.named_parameters()] == [n for n, _ in reference.named_parameters()]
        assert enable(fast, names, on=False) == names
        off, _ = loss_and_grads(fast, frames)
        assert torch.equal(off, want), "switching off restores the reference formulation"


def reference_shape(case: str) -> tuple[int, int, int]:
    return 1, CASES[case][0]["height"], CASES[case][0]["width"]


def count_calls(target: str):
    """A patch of torch.nn.functional.<target> counting its calls."""
    original = getattr(F, target)
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    return mock.patch.object(F, target, wrapper), calls


@pytest.mark.parametrize("case, path, function", [
    ("modernn", "fused_norm", "layer_norm"), ("modernn", "fused_convs", "conv2d"),
    ("convlstm", "fused_convs", "conv2d"), ("predrnn", "fused_convs", "conv2d"),
    ("mim", "fused_convs", "conv2d"), ("mau", "fused_convs", "conv2d"),
    ("e3dlstm", "fused_convs", "conv3d"), ("saconvlstm", "fused_convs", "conv2d"),
])
def test_fast_paths_launch_fewer_kernels(case, path, function):
    """Each fast path really takes another route: fewer LayerNorm / convolution calls."""
    counts = []
    for on in (False, True):
        model = build(case)
        enable(model, [path], on)
        patch, calls = count_calls(function)
        with patch, torch.no_grad():
            model(torch.rand(1, 3, *reference_shape(case), dtype=torch.float64), 2, 1)
        counts.append(len(calls))
    assert counts[1] < counts[0], counts


def test_modernn_fused_convs_launch_counts():
    """Per cell step: 2 DCB convolutions (of 6) per round pair, 1 gate convolution (of 2)."""
    cell = build("modernn").core.cells[0]
    x, h = torch.rand(2, 1, 4, 8, 8, dtype=torch.float64)
    for on, expected in [(False, 5 * 3 + 2), (True, 5 + 1)]:
        cell.set_fast_path("fused_convs", on)
        patch, calls = count_calls("conv2d")
        with patch, torch.no_grad():
            cell(x, (h, h))
        assert len(calls) == expected


@pytest.mark.parametrize("impl", fused.NORM_IMPLS)
def test_every_norm_implementation_is_a_layer_norm(impl, monkeypatch):
    monkeypatch.setattr(fused, "NORM_IMPL", impl)
    x = torch.randn(3, 6, 4, 5, dtype=torch.float64) * 3 + 1
    norm = fused.MapNorm([6, 4, 5]).double()
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    want = norm(x)
    norm.set_fast_path("fused_norm", True)
    assert_close(norm(x), want, impl)
    # three LayerNorms of [2, 4, 5] at once, as the fused DCB uses them
    norms = [fused.MapNorm([2, 4, 5]).double() for _ in range(3)]
    for n in norms:
        with torch.no_grad():
            n.weight.normal_()
            n.bias.normal_()
    want = torch.cat([n(c) for n, c in zip(norms, x.chunk(3, 1), strict=True)], 1)
    assert_close(fused.norm_groups(x, norms), want, f"{impl} groups")


@pytest.mark.parametrize("impl", fused.PAIR_IMPLS)
def test_paired_conv_implementations(impl):
    x, h = torch.randn(2, 3, 3, 6, 6, dtype=torch.float64)
    wx, wh = torch.randn(2, 5, 3, 3, 3, dtype=torch.float64)
    want = torch.cat([F.conv2d(x, wx, padding=1), F.conv2d(h, wh, padding=1)], 1)
    assert_close(fused.paired_conv([x, h], [wx, wh], impl), want, impl)
    x2 = torch.randn(3, 2, 6, 6, dtype=torch.float64)  # unequal inputs: block-diagonal
    want = torch.cat([F.conv2d(x2, wx[:, :2], padding=1), F.conv2d(h, wh, padding=1)], 1)
    assert_close(fused.paired_conv([x2, h], [wx[:, :2], wh], impl), want, f"{impl} unequal")


def test_merged_kernel_centres_the_smaller_kernels():
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    ws = [torch.randn(3, 2, k, k, dtype=torch.float64) for k in (1, 3, 5)]
    got = F.conv2d(x, fused.merged_kernel(ws), padding=2)
    want = torch.cat([F.conv2d(x, w, padding=w.shape[-1] // 2) for w in ws], 1)
    assert_close(got, want, "merged kernel")


def test_bad_names_and_implementations_are_clear_errors():
    with pytest.raises(ValueError, match="unknown fast path 'fused_all'; known: fused_norm, fused_convs"):
        enable(build("modernn"), ["fused_all"])
    with pytest.raises(ValueError, match="offers no fast path 'fused_norm'"):
        build("modernn").core.cells[0].set_fast_path("fused_norm", True)
    x = torch.randn(1, 2, 3, 3)
    with pytest.raises(ValueError, match="unknown norm implementation 'welford'; accepted"):
        fused.group_layer_norm(x, 1, x[0], x[0], 1e-5, impl="welford")
    with pytest.raises(ValueError, match="unknown pair implementation 'dense'; accepted"):
        fused.paired_conv([x, x], [x.new_ones(2, 2, 1, 1)] * 2, impl="dense")
    assert set(FAST_PATHS) == {"fused_norm", "fused_convs"}


def test_models_without_map_norms_or_fusable_convs_offer_nothing():
    for name in ("simvp", "persistence"):
        assert supported(create_model(name, height=16, width=16)) == []


def golden_cases() -> dict:
    return {k: GOLDEN_CASES[k] for k in ("modernn", "convlstm", "predrnn", "predrnnpp", "mim",
                                         "predrnnv2", "mau", "e3dlstm")}


@pytest.mark.parametrize("name", list(golden_cases()))
def test_golden_fixtures_match_with_every_fast_path_on(name):
    case = golden_cases()[name]
    core = case.build()
    assert enable(core, supported(core)) == supported(core) != []
    check_case(case, f"{name} with {', '.join(supported(core))}", core=core)
