"""The checkpoint component on its own: when last.pt is due (PeriodicCheckpointer), and what a
Checkpointer writes (the file layout every earlier last.pt has) and reads back."""
import dataclasses
import random

import numpy as np
import torch

from bench.config import get_preset
from bench.train.checkpoint import LAYOUT, Checkpointer, PeriodicCheckpointer
from bench.train.optim import make_optimizer, make_scheduler

SMOKE = get_preset("smoke")


def config(**changes):
    return dataclasses.replace(SMOKE.train, **{"steps_per_epoch": 4, "checkpoint_every_seconds": 0,
                                               **changes})


def test_epoch_checkpoints_every_checkpoint_every_epochs_and_at_the_last():
    periodic = PeriodicCheckpointer(config(checkpoint_every=2), budgeted=False)
    due = [done for done in range(1, 13) if periodic.due(done, validated=True, finished=done == 12)]
    assert due == [8, 12]  # epoch 2 and the last (3); validation alone does not save


def test_mid_epoch_checkpoints_every_checkpoint_every_steps():
    periodic = PeriodicCheckpointer(config(checkpoint_every_steps=3), budgeted=False)
    due = [done for done in range(1, 9) if periodic.due(done, validated=False, finished=False)]
    assert due == [3, 4, 6, 8]  # every 3 iterations, and each epoch's end


def test_a_budget_checkpoints_where_it_validates_and_by_the_clock():
    periodic = PeriodicCheckpointer(config(), budgeted=True)
    assert periodic.due(4, validated=True, finished=False)
    assert not periodic.due(4, validated=False, finished=False)  # an epoch's end is not a budget's
    periodic = PeriodicCheckpointer(config(checkpoint_every_seconds=1e-9), budgeted=True)
    assert periodic.due(5, validated=False, finished=False)


def test_a_checkpointer_writes_the_layout_and_restores_components_and_random_states(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model, SMOKE.train)
    scheduler = make_scheduler(optimizer, SMOKE.train)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    components = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}
    checkpointer = Checkpointer(tmp_path, torch.device("cpu"), components, log=print)
    progress = {"epoch": 1, "batch": 0, "losses": [], "generator": None, "history": [],
                "best": [None, None], "elapsed_s": 0.0, "parts": 1, "budget": None}
    assert checkpointer.save("last.pt", progress)
    expected = (torch.rand(2), np.random.rand(), random.random())
    saved_weight = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.zero_()
    path, state = checkpointer.latest(("last.pt", "best.pt"))
    assert path == tmp_path / "last.pt" and tuple(state) == LAYOUT
    checkpointer.restore(state)
    assert torch.equal(model.weight, saved_weight)
    again = (torch.rand(2), np.random.rand(), random.random())
    assert torch.equal(again[0], expected[0]) and again[1:] == expected[1:]
