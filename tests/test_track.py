"""Experiment trackers' plumbing without the trackers (bench.track): the fan-out that survives
a failing backend, the example strips, a cell's run kept across resumptions, the training loop's
hook, the CLI's checks. The real trackers are read back in test_track_backends.py."""
import dataclasses
import json

import numpy as np
import pytest
import torch

import models
from bench.config import get_preset
from bench.grid import cells
from bench.grid.request import load_data, model_config
from bench.track import registry
from bench.track.cell import CellTracker, flatten, run_info
from bench.track.fanout import FanOut
from bench.track.strips import GAP, GREY, clip_strip, strips
from bench.train.loop import Trainer

SMOKE = get_preset("smoke")


class Recorder:
    """A backend that records its calls; ``fail``: the method that raises OSError."""

    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def __getattr__(self, method):
        def call(*args):
            if method == self.fail:
                raise OSError(28, "No space left on device")
            self.calls.append((method, args))
            return {"id": "saved"} if method == "start" else None
        return call

    def of(self, method):
        return [args for name, args in self.calls if name == method]


def test_a_failing_backend_gives_one_warning_and_the_others_go_on():
    good, bad, lines = Recorder(), Recorder(fail="log_scalars"), []
    fan = FanOut({"good": good, "bad": bad}, log=lines.append)
    for step in range(3):
        fan.call("log_scalars", {"train/loss": 1.0}, step)
    assert len(good.of("log_scalars")) == 3 and bad.of("log_scalars") == []
    assert list(fan.backends) == ["good"]
    assert len(lines) == 1 and "tracker bad failed (log_scalars: OSError" in lines[0]
    assert "training goes on" in lines[0]


def test_a_backend_that_cannot_be_created_is_left_out(monkeypatch):
    def create(name):
        if name == "wandb":
            raise RuntimeError("network unreachable")
        return Recorder()
    monkeypatch.setattr(registry, "create", create)
    lines = []
    fan = FanOut.create(["tensorboard", "wandb"], log=lines.append)
    assert list(fan.backends) == ["tensorboard"] and len(lines) == 1 and "network" in lines[0]


def test_a_strip_holds_input_then_target_above_the_prediction():
    inputs = np.full((2, 1, 4, 5), 10, np.uint8)
    target = np.full((3, 1, 4, 5), 20, np.uint8)
    prediction = np.full((3, 1, 4, 5), 30, np.uint8)
    strip = clip_strip(inputs, target, prediction)
    assert strip.shape == (2 * 4 + GAP, 5 * 5 + 4 * GAP, 3) and strip.dtype == np.uint8
    step = 5 + GAP
    assert (strip[:4, :5] == 10).all() and (strip[:4, 2 * step:2 * step + 5] == 20).all()
    assert (strip[4 + GAP:, 2 * step:2 * step + 5] == 30).all()
    assert (strip[4 + GAP:, :step] == GREY).all()  # no prediction under the input
    assert (strip[:, 5:5 + GAP] == GREY).all()  # the gap between frames
    rgb = np.arange(3, dtype=np.uint8).reshape(1, 3, 1, 1).repeat(2, 2).repeat(2, 3)
    assert (clip_strip(rgb, rgb, rgb)[0, 0] == [0, 1, 2]).all()  # colour kept as it is
    clips = {"input": inputs[None].repeat(2, 0), "target": target[None].repeat(2, 0),
             "prediction": prediction[None].repeat(2, 0)}
    assert list(strips(clips, "val")) == ["val/clip_0", "val/clip_1"] and strips(None, "x") == {}
    with pytest.raises(ValueError, match=r"expected \[T, C, H, W\] frames"):
        clip_strip(inputs[0], target, prediction)


def record():
    return {"model": "convlstm", "seed": 1, "dataset": "mmnist", "preset": "smoke",
            "config_hash": "abc", "config": {"model": {"hidden": 8}, "train": {"betas": [0.9, 0.99],
                                                                             "grad_clip": None}}}


def test_a_run_is_named_by_its_cell_and_its_config_flattened():
    run = run_info(record(), "results")
    assert run.name == "convlstm__seed1__mmnist__smoke__abc"
    assert run.params["model.hidden"] == 8 and run.params["train.betas"] == "[0.9, 0.99]"
    assert run.params["train.grad_clip"] == "null" and run.params["seed"] == 1
    assert flatten({"a": {"b": {"c": True}}}) == {"a.b.c": True}


def tracker(monkeypatch, tmp_path, backend):
    monkeypatch.setattr(registry, "create", lambda name: backend)
    lines = []
    made = CellTracker(["tensorboard"], run_info(record(), tmp_path), tmp_path / "cell" / "tracking.json",
                       lines.append)
    return made, lines


def test_a_resumed_cell_continues_its_run_and_its_end_says_how_it_ended(monkeypatch, tmp_path):
    first = Recorder()
    part, _ = tracker(monkeypatch, tmp_path, first)
    with pytest.raises(KeyboardInterrupt), part:
        part.begin(0)
        part.losses(1, [0.5, 0.4], {"train/lr": 0.1})
        raise KeyboardInterrupt
    saved = json.loads((tmp_path / "cell" / "tracking.json").read_text())
    assert saved["backends"] == {"tensorboard": {"id": "saved"}} and first.of("finish") == [("killed",)]
    assert first.of("start")[0][1:] == (None, 0) and len(first.of("log_hparams")) == 1
    assert first.of("log_scalars") == [({"train/loss": 0.5}, 1), ({"train/loss": 0.4}, 2),
                                       ({"train/lr": 0.1}, 2)]
    second = Recorder()
    resumed, lines = tracker(monkeypatch, tmp_path, second)
    with resumed:
        resumed.begin(2)
        resumed.tested({"headline": {"mse": 3.0}}, None, {"params": 7, "device": "cpu"})
    run, previous, step = second.of("start")[0]
    assert run.run_id == saved["run_id"] and previous == {"id": "saved"} and step == 2
    assert second.of("log_hparams") == []  # logged once, by the first part
    assert second.of("log_scalars") == [({"test/mse": 3.0, "cost/params": 7.0}, 2)]
    assert second.of("finish") == [("finished",)] and "continuing run" in lines[0]
    assert resumed.identity["run_id"] == saved["run_id"]
    failed = Recorder()
    with pytest.raises(ValueError), tracker(monkeypatch, tmp_path, failed)[0] as third:
        third.begin(0)
        raise ValueError("diverged")
    assert failed.of("finish") == [("failed",)]


def test_a_model_without_training_starts_its_run_at_the_test_and_keeps_no_identity(monkeypatch,
                                                                                  tmp_path):
    backend = Recorder()
    made, _ = tracker(monkeypatch, tmp_path, backend)
    with made:
        made.tested({"headline": {"mse": 1.0}}, None, None)
    assert backend.of("start")[0][1:] == (None, 0) and backend.of("finish") == [("finished",)]
    assert not (tmp_path / "cell").exists()


def test_only_rank_0_tracks_and_only_when_asked(monkeypatch, tmp_path):
    request = dataclasses.make_dataclass("R", [("log_to", list)])
    rec = record()
    monkeypatch.setattr(registry, "create", lambda name: Recorder())
    assert isinstance(cells.cell_tracker(rec, request(["tensorboard"]), tmp_path, print), CellTracker)
    with cells.cell_tracker(rec, request([]), tmp_path, print) as none:
        assert none is None
    monkeypatch.setattr(cells.distributed, "is_main", lambda: False)
    with cells.cell_tracker(rec, request(["tensorboard"]), tmp_path, print) as none:
        assert none is None


class Hook:
    examples = 2

    def __init__(self):
        self.begun, self.losses_at, self.scalars, self.validations = [], [], [], []

    def begin(self, done):
        self.begun.append(done)

    def losses(self, first, values, scalars):
        self.losses_at += [first + k for k in range(len(values))]
        self.scalars.append(scalars)

    def validated(self, step, entry, examples):
        self.validations.append((step, entry, examples))


def test_the_loop_calls_its_hook_with_every_loss_once_and_each_validation(tmp_path):
    data = load_data(SMOKE.data, None, str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = models.create_model("convlstm", **model_config("convlstm", SMOKE, data, {}))
    cfg = dataclasses.replace(SMOKE.train, epochs=2, steps_per_epoch=3, sync_every=2)
    hook = Hook()
    Trainer(model, data, cfg, torch.device("cpu"), 0, tmp_path / "ck", hook=hook).fit(progress=False)
    assert hook.begun == [0] and hook.losses_at == [1, 2, 3, 4, 5, 6]
    assert all({"train/lr", "train/sampling_eta"} <= set(s) for s in hook.scalars)
    assert any("train/samples_per_s" in s for s in hook.scalars)  # timed after the first read
    assert [step for step, _, _ in hook.validations] == [3, 6]
    step, entry, examples = hook.validations[-1]
    assert entry["epoch"] == 2 and examples["prediction"].shape[0] == 2
    assert examples["prediction"].dtype == np.uint8


def test_asking_for_a_tracker_that_is_not_installed_is_one_error_before_training(
        run, monkeypatch, capsys, tmp_path):
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name: None if name in ("wandb", "mlflow") else real(name))
    assert run("--models", "persistence", "--log", "wandb", "mlflow") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--log wandb mlflow: not installed" in err
    assert "wandb: pip install wandb" in err and "pip install '.[track]'" in err
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("records.jsonl"))
    assert run("--models", "persistence", "--log", "neptune") == 2
    assert "invalid choice: 'neptune'" in capsys.readouterr().err


def test_a_tracker_failing_mid_training_is_one_warning_and_training_goes_on(monkeypatch, tmp_path):
    data = load_data(SMOKE.data, None, str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = models.create_model("convlstm", **model_config("convlstm", SMOKE, data, {}))
    cfg = dataclasses.replace(SMOKE.train, epochs=1, steps_per_epoch=2, sync_every=1)
    failing = Recorder(fail="log_scalars")
    hook, lines = tracker(monkeypatch, tmp_path, failing)
    with hook:
        result = Trainer(model, data, cfg, torch.device("cpu"), 0, tmp_path / "ck",
                         hook=hook).fit(progress=False)
    assert result.steps == 2 * 2 and len(result.history) == 1  # trained to the end
    assert len(lines) == 1 and "tracker tensorboard failed (log_scalars: OSError" in lines[0]
    assert failing.of("log_images") == [] and failing.of("finish") == []  # left out after it
