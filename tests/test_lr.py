"""The learning rate as a tensor (what a captured step reads): every writer fills it in place,
the optimizer steps with the rate the schedule says, and checkpoints keep it (bench.train.optim)."""
import dataclasses

import pytest
import torch

from bench.config import get_preset
from bench.train.budget import BudgetPlan, cosine_lr
from bench.train.optim import current_lr, make_optimizer, make_scheduler, set_lr
from bench.train.plans import BudgetRun, EpochPlan

SMOKE = get_preset("smoke")


def cfg(**changes):
    return dataclasses.replace(SMOKE.train, epochs=6, steps_per_epoch=1, **changes)


def pair(cfg):
    """The same small model twice: with a float learning rate and with a tensor one."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    twin = torch.nn.Linear(3, 2)
    twin.load_state_dict(model.state_dict())
    return (model, make_optimizer(model, cfg)), (twin, make_optimizer(twin, cfg, tensor_lr=True))


def step(model, optimizer, x):
    optimizer.zero_grad()
    model(x).square().sum().backward()
    optimizer.step()


def test_a_tensor_lr_follows_the_epoch_schedule_in_place():
    config = cfg()
    (model, optimizer), (twin, tensor_opt) = pair(config)
    lr = tensor_opt.param_groups[0]["lr"]
    assert isinstance(lr, torch.Tensor) and isinstance(optimizer.param_groups[0]["lr"], float)
    plans = [EpochPlan(config, make_scheduler(o, config), 0) for o in (optimizer, tensor_opt)]
    x = torch.randn(4, 3)
    for _ in range(config.epochs - 1):
        for (m, o), plan in zip(((model, optimizer), (twin, tensor_opt)), plans, strict=True):
            plan.begin(o)
            step(m, o, x)
            plan.end(0.0)
        assert tensor_opt.param_groups[0]["lr"] is lr  # filled, never replaced
        assert current_lr(tensor_opt) == pytest.approx(current_lr(optimizer), rel=1e-6)
        torch.testing.assert_close(twin.weight, model.weight, rtol=1e-5, atol=1e-7)
    assert current_lr(optimizer) < config.lr / 2  # the cosine moved
    assert plans[1].entry([], 0.1, {"mse": 1.0, "ssim": 0.5})["lr"] == current_lr(tensor_opt)
    assert isinstance(plans[1].entry([], 0.1, {"mse": 1.0, "ssim": 0.5})["lr"], float)


def test_a_budget_plan_fills_a_tensor_lr_in_place():
    config = cfg()
    _, (twin, optimizer) = pair(config)
    lr = optimizer.param_groups[0]["lr"]
    plan = BudgetRun(BudgetPlan("steps", 4, None, 4, 4, 6), config, None, parallel=False)
    x = torch.randn(4, 3)
    for done in range(4):
        plan.begin(optimizer)
        assert optimizer.param_groups[0]["lr"] is lr
        assert lr.item() == pytest.approx(cosine_lr(done / 4, config), rel=1e-6)
        step(twin, optimizer, x)
        plan.end(0.0)
    set_lr(optimizer, 0.5)
    assert optimizer.param_groups[0]["lr"] is lr and lr.item() == 0.5


def test_checkpoints_with_a_tensor_lr_save_and_resume(tmp_path):
    config = cfg()
    (model, optimizer), (twin, tensor_opt) = pair(config)
    x = torch.randn(4, 3)
    step(twin, tensor_opt, x)
    set_lr(tensor_opt, 3e-4)
    torch.save(tensor_opt.state_dict(), tmp_path / "opt.pt")
    saved = torch.load(tmp_path / "opt.pt", weights_only=True)
    # into a tensor-lr optimizer: its own tensor (the one a graph reads) takes the saved value
    _, (again, resumed) = pair(config)
    lr = resumed.param_groups[0]["lr"]
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(3e-4)
    # into a float-lr optimizer (cuda_graph off on resume) and back
    optimizer.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)
    assert isinstance(optimizer.param_groups[0]["lr"], float)
    resumed.load_state_dict(optimizer.state_dict())
    assert resumed.param_groups[0]["lr"] is lr
    # and the resumed one steps as the uninterrupted one
    again.load_state_dict(twin.state_dict())
    resumed.load_state_dict(saved)
    step(twin, tensor_opt, x)
    step(again, resumed, x)
    assert torch.equal(again.weight, twin.weight)
