"""Micro-benchmarks: one training step and one rollout per registered model at its smoke size.

Skipped in the default test run; run with ``python -m pytest --benchmark-only``.
"""
from types import SimpleNamespace

import pytest
import torch

import models
from bench.config import TrainConfig, get_preset
from bench.grid.request import model_config
from bench.train.loss import sequence_loss

SMOKE = get_preset("smoke")
FRAME = SimpleNamespace(channels=1, height=32, width=32, in_len=4, out_len=4)


def build(name):
    torch.manual_seed(0)
    return models.create_model(name, **model_config(name, SMOKE, FRAME, {}))


@pytest.mark.parametrize("name", models.list_models())
def test_rollout(benchmark, name):
    model = build(name).eval()
    frames = torch.rand(4, 4, 1, 32, 32)
    with torch.no_grad():
        benchmark(lambda: model(frames, 4, 4))


@pytest.mark.parametrize("name", [n for n in models.list_models()
                                  if models.get_spec(n).family != "baseline"])
def test_training_step(benchmark, name):
    model = build(name).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    frames = torch.rand(4, 8, 1, 32, 32)
    cfg = TrainConfig()

    def step():
        loss = sequence_loss(model(frames, 4, 4), frames, 4, cfg)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    benchmark(step)
