"""The loop's schedule and loss: scheduled sampling masks, reverse sampling, loss definitions."""
import pytest
import torch

from bench.config import TrainConfig
from bench.train.loss import sequence_loss
from bench.train.sampling import reverse_eta, sampling_eta, truth_mask
from models import Prediction


def test_linear_eta_falls_from_one_to_zero():
    cfg = TrainConfig(sampling_steps=100)
    assert [sampling_eta(s, cfg) for s in (0, 50, 100, 500)] == [1.0, 0.5, 0.0, 0.0]
    assert sampling_eta(10, TrainConfig(sampling="none")) == 0.0


def test_linear_mask_is_one_draw_per_sequence_and_step():
    cfg = TrainConfig(sampling_steps=100)
    mask = truth_mask(50, cfg, 4000, 10, 10, torch.Generator().manual_seed(0), "cpu")
    assert mask.shape == (4000, 9) and mask.dtype == torch.bool
    assert mask.float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert truth_mask(100, cfg, 4, 10, 10, torch.Generator(), "cpu") is None


def test_reverse_mask_covers_the_input_window():
    cfg = TrainConfig(sampling="reverse", reverse_steps=(100, 200), reverse_exp_alpha=10.0)
    mask = truth_mask(300, cfg, 500, 10, 10, torch.Generator().manual_seed(0), "cpu")
    assert mask.shape == (500, 18)
    assert mask[:, :9].all() and not mask[:, 9:].any()  # late: true inputs, own outputs after
    early = truth_mask(0, cfg, 4000, 10, 10, torch.Generator().manual_seed(0), "cpu")
    assert early.float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert reverse_eta(150, cfg) == pytest.approx(1 - 0.5 * torch.exp(torch.tensor(-5.0)).item())


def test_authors_loss_is_summed_squared_plus_absolute_over_four():
    frames = torch.zeros(2, 6, 1, 4, 4)
    pred = Prediction(future=torch.full((2, 3, 1, 4, 4), 0.5), warmup=torch.full((2, 2, 1, 4, 4), 0.5))
    loss = sequence_loss(pred, frames, 3, TrainConfig(warmup_loss_skip=1))
    # future: 2*3*16 elements; warm-up from call 1: 2*1*16 elements; each 0.25 + 0.5
    assert loss.item() == pytest.approx((2 * 4 * 16) * 0.75 / 4)
    future_only = sequence_loss(pred, frames, 3, TrainConfig(warmup_loss_skip=None, loss="mse"))
    assert future_only.item() == pytest.approx(0.25)


def test_auxiliary_loss_keeps_its_weight_against_a_summed_loss():
    frames = torch.zeros(1, 4, 1, 2, 2)
    aux = torch.tensor(0.1)
    pred = Prediction(future=torch.zeros(1, 2, 1, 2, 2), aux_loss=aux)
    assert sequence_loss(pred, frames, 2, TrainConfig(loss="mse")).item() == pytest.approx(0.1)
    summed = sequence_loss(pred, frames, 2, TrainConfig(loss="mse+l1", warmup_loss_skip=None))
    assert summed.item() == pytest.approx(0.1 * 8)
