"""One suite for every registered model, at its smoke-preset size (32x32 frames)."""
from types import SimpleNamespace

import pytest
import torch

import models
from bench.config import TrainConfig, get_preset
from bench.grid.request import model_config
from bench.train.loss import sequence_loss

SMOKE = get_preset("smoke")
FRAME = SimpleNamespace(channels=1, height=32, width=32, in_len=4, out_len=4)
ALL = models.list_models()
TRAINABLE = [n for n in ALL if models.get_spec(n).family != "baseline"]
INPUT_FREE = {"blank", "mean"}  # predictions that by design ignore the input frames


def build(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.create_model(name, **model_config(name, SMOKE, FRAME, {}))


def clips(batch=2, length=8, seed=1) -> torch.Tensor:
    return torch.rand(batch, length, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("in_len,out_len", [(4, 4), (4, 2), (3, 5)])
def test_output_shape(name, in_len, out_len):
    model = build(name).eval()
    with torch.no_grad():
        pred = model(clips(length=in_len), in_len, out_len)
    assert pred.future.shape == (2, out_len, 1, 32, 32)
    assert torch.isfinite(pred.future).all()
    if pred.warmup is not None:
        assert pred.warmup.shape == (2, in_len - 1, 1, 32, 32)


@pytest.mark.parametrize("name", ALL)
def test_no_peeking_at_future_frames(name):
    """With teacher forcing off, predictions do not change when the true future frames change."""
    model = build(name).eval()
    frames = clips()
    altered = frames.clone()
    altered[:, 4:] = torch.rand_like(altered[:, 4:])
    with torch.no_grad():
        a, b = model(frames, 4, 4).future, model(altered, 4, 4).future
        changed = frames.clone()
        changed[:, 3] = torch.rand_like(changed[:, 3])
        c = model(changed, 4, 4).future
    assert torch.equal(a, b)
    if name not in INPUT_FREE:
        assert not torch.equal(a, c), "predictions must depend on the last input frame"


@pytest.mark.parametrize("name", TRAINABLE)
def test_gradients_reach_every_parameter(name):
    model = build(name).train()
    frames = clips()
    loss = sequence_loss(model(frames, 4, 4), frames, 4, TrainConfig())
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"


@pytest.mark.parametrize("name", TRAINABLE)
def test_training_steps_lower_the_loss(name):
    model = build(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    frames = clips(batch=4)
    cfg = TrainConfig(loss="mse")
    losses = []
    for _ in range(8):
        loss = sequence_loss(model(frames, 4, 4), frames, 4, cfg)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


@pytest.mark.parametrize("name", ALL)
def test_deterministic_for_a_seed(name):
    frames = clips()
    with torch.no_grad():
        a = build(name, seed=3).eval()(frames, 4, 4).future
        b = build(name, seed=3).eval()(frames, 4, 4).future
    assert torch.equal(a, b)
