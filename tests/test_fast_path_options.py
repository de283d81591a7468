"""The fast-path switches (TrainConfig fused_norm / fused_convs): applied once per cell by the
Trainer, in the config hash only when on, and recorded (asked for, and what applied)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import bench.report
from bench.config import TrainConfig, hashed_train_options
from bench.grid.checks import check_train_overrides
from bench.runtime.compile import apply_fast_paths, asked_fast_paths
from bench.store import ResultsStore
from bench.train.loop import Trainer
from models.registry import create_model


def test_hash_holds_the_switches_only_when_on():
    plain = hashed_train_options(TrainConfig())
    assert "fused_norm" not in plain and "fused_convs" not in plain and "compile" in plain
    on = hashed_train_options(TrainConfig(fused_convs=True))
    assert on["fused_convs"] is True and "fused_norm" not in on
    assert check_train_overrides({"fused_norm": True}) == {"fused_norm": True}
    with pytest.raises(ValueError, match="--set fused_norm=yes: expected true or false"):
        check_train_overrides({"fused_norm": "yes"})


def test_asked_and_applied():
    cfg = TrainConfig(fused_norm=True, fused_convs=True)
    assert asked_fast_paths(cfg) == ["fused_norm", "fused_convs"]
    assert asked_fast_paths(TrainConfig()) == []
    model = create_model("convlstm", height=16, width=16, hidden=4, layers=1)
    assert apply_fast_paths(model, cfg) == ["fused_convs"]  # no layer norm: nothing to fuse there
    assert model.core.cells[0].fused_convs


def test_the_trainer_switches_them_on_in_the_model_it_trains(tmp_path):
    data = type("Data", (), {"in_len": 2, "out_len": 2})()
    model = create_model("modernn", height=16, width=16, hidden=4, layers=1)
    cfg = dataclasses.replace(TrainConfig(), fused_norm=True)
    trainer = Trainer(model, data, cfg, torch.device("cpu"), 0, tmp_path)
    assert trainer.fast_paths == ["fused_norm"]
    cell = model.core.cells[0]
    assert cell.norm_c.fused_norm and cell.gate_x.norm.fused_norm and not cell.fused_convs
    plain = Trainer(create_model("modernn", height=16, width=16, hidden=4, layers=1), data,
                    TrainConfig(), torch.device("cpu"), 0, tmp_path / "b")
    assert plain.fast_paths == [] and not plain.model.core.cells[0].norm_c.fused_norm


@pytest.fixture
def run(tmp_path, no_profile, monkeypatch):
    from bench.cli.main import main
    monkeypatch.setattr(bench.report, "write_report",
                        lambda folder, **options: (folder / "summary.md").write_text(""))

    def run_cli(*args):
        return main(["--preset", "smoke", "--out", str(tmp_path / "results"), "--cache-dir",
                     str(tmp_path / "cache"), "--no-progress", "--epochs", "1", "--steps", "1",
                     *args])
    return run_cli


def test_records_say_what_was_asked_and_what_applied(run, tmp_path):
    models = ["modernn", "persistence"]
    assert run("--models", *models, "--set", "fused_norm=true", "--set", "fused_convs=true") == 0
    assert run("--models", "modernn") == 0
    records = ResultsStore(tmp_path / "results" / "mmnist-embedded-32px" / "smoke").records()
    fast = {r["model"]: r for r in records[:2]}
    assert [fast[m]["device_settings"]["fast_paths"] for m in models] == [
        ["fused_norm", "fused_convs"], []]
    for record in fast.values():
        assert record["status"] == "ok", record.get("error")
        settings = record["device_settings"]
        assert settings["fused_norm"] is True and settings["fused_convs"] is True
        assert record["config"]["train"]["fused_norm"] is True
    plain = records[2]
    assert plain["device_settings"]["fast_paths"] == [] and not plain["device_settings"]["fused_norm"]
    assert "fused_norm" not in plain["config"]["train"]
    assert plain["config_hash"] != fast["modernn"]["config_hash"]  # another cell, trained anew


def test_fast_bench_times_each_mode_side_by_side(capsys):
    from bench.tools import fast_bench

    assert fast_bench.main(["--models", "convlstm", "modernn", "--size", "smoke", "--batch", "1",
                            "--frames", "2", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("fast paths, forward + backward of a 2 -> 2 rollout, batch 1")
    assert lines[1].split()[:4] == ["convlstm", "off", lines[1].split()[2], "s"]
    assert "fused_convs" in lines[1] and "fused_norm" not in lines[1]
    assert all(k in lines[2] for k in ("fused_norm", "fused_convs", "all")) and "x)" in lines[2]
    assert fast_bench.main(["--models", "convlstn"]) == 2
    assert "unknown model(s) convlstn" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fast_bench.main(["--repeats", "0"])
    assert "--repeats must be >= 1; got 0" in capsys.readouterr().err
