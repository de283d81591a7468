"""The harness's training step (Trainer.training_step, both passes, the paper preset's settings)
against one iteration of the MoDeRNN authors' trainer (tests/fixtures/modernn_train_step*.npz;
bench/verify/train_step.py states the bounds)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import bench.config
import bench.train.loop
import bench.train.loss
import bench.verify.train_step as train_step
from bench.verify.train_step import (
    FILES,
    authors_channels,
    compare_step,
    load_train_step,
    patch_order_matches,
    run_train_step,
    train_config,
)
from models.patch import patchify


@pytest.fixture(scope="module")
def f64():
    return load_train_step(FILES[torch.float64])


def check(fx, label: str, **kwargs):
    comparison = compare_step(fx, *run_train_step(fx, **kwargs))
    print(f"\n[train step {label}] {comparison.describe(0)}; bound {comparison.describe(1)}; "
          f"worst ratio {comparison.ratio:.3g}")
    return comparison


def test_patches_are_the_authors_up_to_one_channel_permutation(f64):
    assert f64.config["patch"] == 4 and tuple(f64.frames.shape) == (2, 20, 1, 64, 64)
    assert patch_order_matches(f64)
    assert not torch.equal(patchify(f64.frames, 4), f64.patched)  # the orders do differ
    assert authors_channels(2).tolist() == [0, 2, 1, 3]


def test_mask_is_the_authors_true_token_transposed(f64):
    assert tuple(f64.truth_mask.shape) == (2, 9) and f64.truth_mask.dtype == torch.bool
    assert f64.truth_mask[0].tolist() == [False, False, True, True, False, False, False, True, True]


def test_float64_step_reproduces_the_authors_iteration(f64):
    assert train_config(f64.config) == bench.config.get_preset("paper").train  # the paper's settings
    comparison = check(f64, "float64")
    assert comparison.ratio <= 1


def test_float32_step_within_its_bound():
    fx = load_train_step(FILES[torch.float32])
    assert fx.dtype == torch.float32
    assert check(fx, "float32").ratio <= 1


def test_without_weight_decay_it_fails(f64):
    cfg = dataclasses.replace(train_config(f64.config), weight_decay=0.0)
    assert check(f64, "weight decay 0", cfg=cfg).ratio > 1e3


def test_a_loss_without_the_halving_fails(f64, monkeypatch):
    def doubled(*args, **kwargs):
        return 2 * bench.train.loss.sequence_loss(*args, **kwargs)

    monkeypatch.setattr(bench.train.loop, "sequence_loss", doubled)
    monkeypatch.setattr(train_step, "sequence_loss", doubled)
    assert check(f64, "loss not halved").ratio > 1e3


def test_another_mask_fails(f64):
    fx = dataclasses.replace(f64, truth_mask=~f64.truth_mask)
    assert check(fx, "mask inverted").ratio > 1e3
