"""SwinLSTM-D against OpenSTL's own outputs, its parameter count at the paper's configuration, its
Swin pieces, and one training step under the harness."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from bench.config import TrainConfig, get_preset
from bench.grid.request import model_config
from bench.train.loss import sequence_loss
from bench.verify.cases.transformers import openstl_names, swinlstm_case
from bench.verify.golden import check_case, load_fixture
from models.registry import create_model, get_spec, list_models
from models.swinlstm import SwinLSTM, relative_position_index, shift_mask

# The fixture's configuration (tests/fixtures/README.md): 32x32x1, embed 16, window 2.
FIXTURE_ARGS = dict(channels=1, height=32, width=32, embed_dim=16, depths_down=[2, 3],
                    depths_up=[3, 2], heads=[2, 4], window=2)

GOLDEN = swinlstm_case()


def test_matches_openstl_outputs():
    report = check_case(GOLDEN, "swinlstm")
    assert len(report["per_step"]) == 19  # 9 warm-up outputs, then the 10 predicted frames


def test_never_used_tensors_are_the_ones_openstl_lists():
    weights = load_fixture("swinlstm_golden.npz").weights
    _, unused = openstl_names(list(weights))
    assert len(unused) == 12
    assert sum(weights[n].size for n in unused) == 13_056  # the fixture README's count
    assert sum(weights[n].size for n in weights if weights[n].dtype.kind == "f"
               and "attn_mask" not in n) == 234_399


def test_rebuilt_buffers_equal_openstl_buffers():
    """Our relative-position indices and shift masks are built here, not only loaded."""
    weights = load_fixture("swinlstm_golden.npz").weights
    mapping, _ = openstl_names(list(weights))
    state = SwinLSTM(**FIXTURE_ARGS).state_dict()
    buffers = [n for n in mapping if n.endswith(("relative_position_index", "attn_mask"))]
    assert len(buffers) == 10 + 4
    for name in buffers:
        ours = state[mapping[name]]
        assert ours.dtype == torch.from_numpy(weights[name]).dtype, name
        assert torch.equal(ours, torch.from_numpy(weights[name])), name
    assert torch.equal(relative_position_index(2), torch.tensor(
        [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]))
    assert shift_mask(4, 4, 2, 1).shape == (4, 4, 4)


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_at_the_paper_configuration():
    """configs/mmnist/SwinLSTM-D.py at 64x64x1: OpenSTL builds 20,191,969 parameters, of which
    its forward never uses UpSample.patch_embed (conv 1->128 at 2x2 + LayerNorm: 896) and the odd
    blocks' red (Linear(2d, d): 1 block of 128 + 3 of 256 down, 1 of 512 + 3 of 256 up)."""
    with torch.device("meta"):
        model = create_model("swinlstm")
    ours = count(model)
    patch_embed = 128 * 4 + 128 + 2 * 128

    def red(d):
        return 2 * d * d + d
    odd_red = red(128) + 3 * red(256) + red(512) + 3 * red(256)
    assert (patch_embed, odd_red) == (896, 1_345_664)
    assert ours == 18_845_409
    assert ours + patch_embed + odd_red == 20_191_969
    assert sum(b.numel() for b in model.buffers()) == 46_080  # OpenSTL's buffer elements too


def test_registered_with_presets():
    assert "swinlstm" in list_models()
    spec = get_spec("swinlstm")
    assert spec.width_arg == "embed_dim" and set(spec.preset_args) == {"smoke", "quick"}
    quick = create_model("swinlstm", **spec.preset_args["quick"]).eval()
    with torch.no_grad():
        pred = quick(torch.rand(1, 3, 1, 64, 64), 2, 2)
    assert pred.future.shape == (1, 2, 1, 64, 64) and pred.warmup.shape == (1, 1, 1, 64, 64)
    wide = create_model("swinlstm", height=32, width=64, **spec.preset_args["smoke"]).eval()
    with torch.no_grad():  # an extension: OpenSTL asserts square frames
        assert wide(torch.rand(1, 2, 1, 32, 64), 1, 2).future.shape == (1, 2, 1, 32, 64)


def test_trains_one_step_under_the_harness():
    """The smoke preset's model, the harness's loss with a scheduled-sampling mask, one Adam
    step: the loss is finite, every parameter gets a gradient and the weights move."""
    frame = SimpleNamespace(channels=1, height=32, width=32, in_len=4, out_len=4)
    torch.manual_seed(0)
    model = create_model("swinlstm", **model_config("swinlstm", get_preset("smoke"), frame, {}))
    model.train()
    frames = torch.rand(2, 8, 1, 32, 32)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    pred = model(frames, 4, 4, truth_mask=torch.tensor([[True, False, True], [False, True, False]]))
    loss = sequence_loss(pred, frames, 4, TrainConfig())
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    optimizer.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("kwargs, needle", [
    ({"height": 36}, "divisible by 8"), ({"height": 40}, "window 4"), ({"heads": (3, 8)}, "heads[0]"),
    ({"depths_up": (2,)}, "one entry per stage"), ({"drop_path": 1.0}, "drop_path"),
])
def test_bad_arguments_are_named(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("[", r"\[")):
        create_model("swinlstm", **kwargs)
