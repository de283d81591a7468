"""PredFormer (Quadruplet-TSST) against its authors' code, its parameter counts, its positional
embedding, its rollout and one training step under the harness.

The fixture (tests/fixtures/predformer_golden.npz; tests/fixtures/README.md says how it was made)
holds the state dict of yyyujintang/PredFormer's ``PredFormer_Model`` (b73c7ae) under its own
names, an input and the eval-mode output of one call of that code.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import models
from bench.config import get_preset
from bench.grid.request import load_data, model_config
from bench.train.loop import Trainer
from bench.verify.cases.transformers import predformer_case, predformer_names
from bench.verify.golden import FIXTURES, GoldenCase, check_case, compare, load_fixture, run_case
from models.predformer import TSST, sinusoid

FIXTURE = "predformer_golden.npz"
# The fixture's configuration (its ``config`` entry): 32x32x1, 10 -> 10, 4x4 patches.
SMALL = dict(channels=1, height=32, width=32, in_len=10, patch=4, dim=32, heads=2, dim_head=16,
             scale_dim=4, depth=1, Ndepth=2)
GOLDEN = predformer_case(FIXTURE)


def test_matches_the_authors_outputs():
    report = check_case(GOLDEN, "predformer")
    assert len(report["per_step"]) == 10  # one call predicts the 10 frames


def test_positional_embedding_is_the_references_fixed_sinusoid():
    """Not in the reference's state dict (a plain tensor there), not in ours (a non-persistent
    buffer); the fixture keeps the reference's table as ``aux/pos_embedding``."""
    theirs = torch.from_numpy(np.load(FIXTURES / FIXTURE)["aux/pos_embedding"])
    model = models.create_model("predformer", **SMALL)
    ours = model.net.pos_embedding
    assert ours.shape == theirs.shape == (1, 10, 64, 32)
    assert "net.pos_embedding" not in model.state_dict()
    assert not any(p is ours for p in model.parameters())
    assert (ours - theirs).abs().max().item() <= 1.2e-7  # one float32 ulp at 1 (models/predformer.py)
    table = sinusoid(640, 32)
    assert table[0, 0] == 0 and table[0, 1] == 1  # q = 0: sin 0, cos 0
    assert torch.allclose(table[5, 2], torch.tensor(5 / 10000 ** (2 / 32)).sin())


@pytest.mark.parametrize("ndepth, expected", [(6, 25_297_728), (8, 33_719_104)])
def test_parameter_count_at_the_paper_configuration(ndepth, expected):
    """configs/mmnist/PredFormer.py (patch 8, dim 256, heads 8, dim_head 32, scale_dim 4, depth
    1), counted by building the reference: 25,297,728 with Ndepth 6, 33,719,104 with 8."""
    with torch.device("meta"):
        model = models.create_model("predformer", Ndepth=ndepth)
    assert sum(p.numel() for p in model.parameters()) == expected
    blocks = sum(p.numel() for p in model.net.blocks.parameters())
    assert blocks == ndepth * 4_210_688
    assert len(model.net.blocks[0]) == 4 and [t.axis for t in model.net.blocks[0]] == list(TSST)


def test_fixture_parameter_count():
    fixture = load_fixture(FIXTURE)
    model = GOLDEN.build()
    assert sum(p.numel() for p in model.parameters()) == 136_304
    assert sum(w.size for w in fixture.weights.values()) == 136_304


def test_one_wrong_mapping_is_caught():
    """Swapping the two SwiGLU input projections of one transformer (a plausible mix-up) moves
    the outputs far outside the bound."""
    mapping, unused = predformer_names()
    a, b = ("blocks.0.ts_space_transformer.layers.0.1.fn.fc1_g",
            "blocks.0.ts_space_transformer.layers.0.1.fn.fc1_x")
    for p in ("weight", "bias"):
        mapping[f"{a}.{p}"], mapping[f"{b}.{p}"] = mapping[f"{b}.{p}"], mapping[f"{a}.{p}"]
    broken = GoldenCase(GOLDEN.fixture, GOLDEN.build, lambda: (mapping, unused), GOLDEN.tol)
    report = compare(*run_case(broken), GOLDEN.tol)
    print(f"\n[predformer, fc1_g <-> fc1_x swapped] max |diff| {report['max_diff']:.3e}")
    assert report["worst_ratio"] > 10  # 33 on the machine that set the bound


def test_rollout_is_the_references_chunks():
    """PredFormer's _predict: out_len < T crops one call; out_len > T feeds the T predicted
    frames back (the last chunk cropped)."""
    model = models.create_model("predformer", **{**SMALL, "in_len": 4}).eval()
    frames = torch.rand(2, 4, 1, 32, 32)
    with torch.no_grad():
        first = model.net(frames)
        assert torch.equal(model(frames, 4, 4).future, first)
        assert torch.equal(model(frames, 4, 3).future, first[:, :3])
        long = model(frames, 4, 6).future
        assert torch.equal(long[:, :4], first) and torch.equal(long[:, 4:], model.net(first)[:, :2])


def test_attention_spans_time_and_space():
    """Full, unmasked attention: the first predicted frame depends on the last input frame (time
    is not causal), a far patch on a corner patch, and no sample on another."""
    model = models.create_model("predformer", **{**SMALL, "in_len": 4}).eval()
    frames = torch.rand(2, 4, 1, 32, 32)
    changed = frames.clone()
    changed[0, 3, :, :4, :4] = torch.rand(1, 4, 4)
    with torch.no_grad():
        before, after = model(frames, 4, 4).future, model(changed, 4, 4).future
    assert not torch.equal(before[0, 0, :, -4:, -4:], after[0, 0, :, -4:, -4:])
    assert torch.equal(before[1], after[1])


@pytest.mark.parametrize("args, needle", [
    ({"patch": 3}, "patch size 3"), ({"heads": 0}, "heads"), ({"drop_path": 1.0}, "drop_path"),
    ({"Ndepth": 0}, "Ndepth"),
])
def test_bad_arguments_are_named(args, needle):
    with pytest.raises(ValueError, match=needle):
        models.create_model("predformer", **args)


def test_other_frame_sizes_are_refused():
    model = models.create_model("predformer", **SMALL)
    with pytest.raises(ValueError, match="32x32"):
        model(torch.rand(1, 10, 1, 64, 64), 10, 10)


def test_one_training_step_under_the_harness(tmp_path):
    """The smoke preset's model, data and Trainer: one iteration (both passes) changes every
    parameter and returns a finite loss."""
    smoke = get_preset("smoke")
    data = load_data(smoke.data, None, str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = models.create_model("predformer", **model_config("predformer", smoke, data, {}))
    before = [p.detach().clone() for p in model.parameters()]
    trainer = Trainer(model, data, smoke.train, torch.device("cpu"), 0, tmp_path)
    frames = next(data.train_batches(2, seed=0))
    loss = trainer.training_step(frames, 1, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
