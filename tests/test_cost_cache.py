"""The cost cache (RESULTS/cost_cache/): reused by later runs, measured again on request
(--remeasure, --rerun), dropped when training contradicts it by more than 2x; and the grid's
estimate refreshed from the measured iteration times after each cell."""
from pathlib import Path

import pytest

import bench.grid.costs
import bench.report
from bench.cli.main import main
from bench.cost.estimate import remaining_line

FOLDER = Path("mmnist-embedded-32px") / "smoke"


@pytest.fixture
def run(tmp_path, monkeypatch):
    """The CLI at the smoke preset with a stub profile (fast; ``calls`` counts it) whose
    throughput says one training iteration takes 2 microseconds, and no report."""
    calls = []

    def profile(model, *args, **kwargs):
        calls.append(type(model).__name__)
        return {"params": 1, "train_seq_s": 1e6, "infer_seq_s": 1e6}

    def report(folder, **options):
        (Path(folder) / "summary.md").write_text("")
    monkeypatch.setattr(bench.grid.costs, "profile_model", profile)
    monkeypatch.setattr(bench.report, "write_report", report)

    def run_cli(*args):
        return main(["--preset", "smoke", "--out", str(tmp_path / "results"), "--cache-dir",
                     str(tmp_path / "cache"), "--no-progress", *args])
    run_cli.calls = calls
    return run_cli


def test_cached_costs_are_reused_unless_remeasure_or_rerun(run, tmp_path, capsys):
    assert run("--models", "persistence") == 0 and len(run.calls) == 1
    [cache] = (tmp_path / "results" / FOLDER / "cost_cache").glob("persistence__*.json")
    assert run("--models", "persistence", "--seeds", "1") == 0 and len(run.calls) == 1
    assert f"measured by an earlier run on this kind of device ({cache}; --remeasure" in \
        capsys.readouterr().out
    assert run("--models", "persistence", "--seeds", "2", "--remeasure") == 0
    assert len(run.calls) == 2
    assert run("--models", "persistence", "--rerun") == 0 and len(run.calls) == 3
    assert run("--models", "persistence") == 0 and len(run.calls) == 3  # done: skipped
    skipped = capsys.readouterr().out
    assert "skip persistence seed 0: done on CPU (" in skipped and ", precision float32, at" in skipped


def test_the_skip_line_says_the_precision_in_words():
    from bench.runtime.precision import describe_precision

    assert describe_precision("none") == "float32"
    assert describe_precision("none+tf32") == "float32, TF32"
    assert describe_precision("bf16") == "bf16 autocast"


def test_a_cost_training_contradicts_is_dropped_and_the_estimate_refreshed(run, tmp_path,
                                                                           capsys):
    """The stub profile says 2 microseconds an iteration; real training takes far longer, so
    the cached cost is dropped after the first cell, and the estimate of the second is scaled."""
    assert run("--models", "convlstm", "--seeds", "0", "1", "--steps", "1") == 0
    printed = capsys.readouterr().out
    assert "== convlstm (seed 0, preset smoke, mmnist-embedded-32px; cell 1 of 2)" in printed
    assert "== convlstm (seed 1, preset smoke, mmnist-embedded-32px; cell 2 of 2)" in printed
    assert printed.count("the machine was probably busy while one of them was measured") == 1
    assert not list((tmp_path / "results" / FOLDER / "cost_cache").glob("convlstm__*"))
    assert "refreshed estimate: about " in printed and "for the 1 cell(s) left" in printed
    assert run("--models", "convlstm", "--seeds", "2", "--steps", "1") == 0 and len(run.calls) == 2


def test_a_cost_training_agrees_with_is_kept(tmp_path):
    cache = bench.grid.costs.cost_cache_path(tmp_path, "convlstm", "abc")
    cache.parent.mkdir()
    cache.write_text("{}")
    record = {"model": "convlstm", "config_hash": "abc", "train": {"iteration_s": 0.3},
              "estimate": {"iteration_s": 0.2}}
    logged, ratios = [], {}
    bench.grid.costs.check_cost(record, tmp_path, logged.append, ratios)
    assert cache.exists() and logged == [] and ratios == {"convlstm": pytest.approx(1.5)}


def test_the_refreshed_estimate_scales_each_model_by_its_own_ratio_else_the_median():
    left = [{"model": "a", "estimate": {"train_s": 100.0, "eval_s": 10.0}},
            {"model": "b", "estimate": {"train_s": 50.0, "eval_s": 0.0}},
            {"model": "c", "estimate": {"train_s": 10.0, "eval_s": 0.0},
             "budget": {"kind": "time"}},  # a time budget's training seconds stay
            {"model": "d", "estimate": None}]
    line = remaining_line(left, {"a": 0.5, "z": 0.1})
    # a: 110 x 0.5 = 55; b: 50 x median(0.5, 0.1) = 15; c: 10 + 0 = 10
    assert line.startswith("   refreshed estimate: about 1m20s for the 3 cell(s) left")
    assert "a 0.5x, z 0.1x; others 0.3x" in line
    assert remaining_line(left, {}) is None and remaining_line([], {"a": 1.0}) is None
