"""Comparisons that hold up: the paired bootstrap over test clips, the seeds test only where there
are enough seeds, the reference model, per-clip metrics, and the trivial baselines."""
import itertools

import numpy as np
import pytest
import torch
from test_report import record

import models
from bench.cli.main import main
from bench.evaluation.loop import evaluate
from bench.report import resolve_reference, write_report
from bench.report.aggregate import accuracy_frame
from bench.report.statistics import paired_bootstrap, paired_clip_differences
from bench.store import ResultsStore
from models.persistence import Persistence

RNG = np.random.default_rng(7)
HARD = RNG.gamma(2.0, 20.0, size=400)  # per-clip MSE of a model: some clips are much harder


# ------------------------------------------------------------------------------------ bootstrap
def test_a_model_against_itself_contains_zero_and_a_worse_one_excludes_it():
    mean, low, high = paired_bootstrap(HARD - HARD)
    assert mean == 0 and low <= 0 <= high
    noisy = HARD + RNG.normal(0, 1, HARD.size)  # as good, up to noise
    _, low, high = paired_bootstrap(noisy - HARD)
    assert low < 0 < high
    worse = HARD * 1.05 + RNG.normal(0, 1, HARD.size)  # 5% worse on every clip
    mean, low, high = paired_bootstrap(worse - HARD)
    assert 0 < low < mean < high
    # paired: the clip-to-clip spread cancels; an unpaired interval would straddle 0
    assert high - low < 0.2 * HARD.std()


def test_the_bootstrap_is_deterministic_under_its_seed():
    d = RNG.normal(1, 5, 300)
    assert paired_bootstrap(d) == paired_bootstrap(d)
    assert paired_bootstrap(d, seed=1) != paired_bootstrap(d, seed=2)


def test_several_seeds_pair_clips_within_a_seed_and_average_over_seeds():
    runs = {0: HARD + 1, 1: HARD + 3, 2: HARD + 5}
    reference = {0: HARD, 1: HARD + 1, 2: HARD + 2, 3: HARD + 100}  # seed 3: no partner
    diff, seeds = paired_clip_differences(runs, reference)
    assert seeds == 3 and diff == pytest.approx(np.full(HARD.size, 2.0))
    # a deterministic model (one run) is paired with every seed of the reference
    diff, seeds = paired_clip_differences({0: HARD}, reference, fixed=True)
    assert seeds == 4 and diff == pytest.approx(np.full(HARD.size, -(0 + 1 + 2 + 100) / 4))
    assert paired_clip_differences({0: HARD[:10]}, {0: HARD}) == (None, 0)  # other test sets


# ------------------------------------------------------------------------- the seeds test
def store_of(tmp_path, seeds_per_model):
    store = ResultsStore(tmp_path)
    for model, (seeds, offset, params) in seeds_per_model.items():
        for seed in seeds:
            store.append(record(model, seed, 20.0 + offset + seed * 0.5, params=params))
    return store


def test_no_seeds_test_below_three_seeds(tmp_path):
    store = store_of(tmp_path, {"modernn": ([0, 1], 0, 1000), "convlstm": ([0, 1], 10, 1000)})
    acc = accuracy_frame(store.latest(), "modernn").set_index("model")
    assert np.isnan(acc.loc["convlstm", "p_seeds"])
    assert acc.loc["convlstm", "delta_mse"] == pytest.approx(10)
    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "Δ MSE vs modernn [95% CI]" in summary and "(seeds)" not in summary.split("\n\n")[2]
    assert "No test over seeds" in summary


def test_three_seeds_are_tested_but_deterministic_models_never(tmp_path):
    store = store_of(tmp_path, {"modernn": ([0, 1, 2], 0, 1000),
                                "convlstm": ([0, 1, 2], 10, 1000),
                                "persistence": ([0, 1, 2], 30, 0)})
    acc = accuracy_frame(store.latest(), "modernn").set_index("model")
    assert acc.loc["convlstm", "p_seeds"] < 0.05
    assert acc.loc["persistence", "deterministic"] and np.isnan(acc.loc["persistence", "p_seeds"])
    write_report(tmp_path)
    table = (tmp_path / "summary.md").read_text().split("\n\n")[2]
    assert "p vs modernn (seeds)" in table
    persistence = next(line for line in table.splitlines() if line.startswith("| persistence"))
    assert persistence.rstrip(" |").endswith("]")  # its interval, and no p-value after it


# --------------------------------------------------------------------------- the reference
def test_no_comparison_column_without_the_reference(tmp_path):
    store = store_of(tmp_path, {"convlstm": ([0], 10, 1000), "persistence": ([0], 30, 0)})
    assert resolve_reference(store.latest()) is None
    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "Δ MSE" not in summary and "p vs" not in summary
    write_report(tmp_path, reference="persistence")
    assert "Δ MSE vs persistence [95% CI]" in (tmp_path / "summary.md").read_text()
    with pytest.raises(ValueError, match="reference model 'modernn' has no records here"):
        write_report(tmp_path, reference="modernn")


def test_the_reference_named_by_the_run_reaches_the_report(tmp_path):
    store = ResultsStore(tmp_path)
    for model in ("modernn", "convlstm"):
        store.append({**record(model, 0, 20.0), "reference": "convlstm"})
    assert resolve_reference(store.latest()) == "convlstm"
    assert resolve_reference(store.latest(), "modernn") == "modernn"


def test_a_reference_outside_the_grid_is_a_clear_error(tmp_path, capsys):
    code = main(["--preset", "smoke", "--models", "persistence", "blank", "--reference",
                 "modernn", "--out", str(tmp_path)])
    assert code == 2
    assert ("error: --reference 'modernn' is not in the grid; add it to --models or pick one of: "
            "persistence, blank") in capsys.readouterr().err


# --------------------------------------------------------------------------- per-clip metrics
def test_per_clip_metrics_cover_every_clip_and_average_to_the_headline():
    clips = list(torch.rand(7, 6, 1, 16, 16, generator=torch.Generator().manual_seed(0)))
    result = evaluate(Persistence(), clips, 3, 3, torch.device("cpu"), batch_size=3,
                      per_clip=True)
    assert set(result["per_clip"]) == {"mse", "mae", "ssim", "psnr"}
    for key, values in result["per_clip"].items():
        assert len(values) == 7
        # stored to 6 significant digits; SSIM of random frames mixes signs, hence abs too
        assert np.mean(values) == pytest.approx(result["headline"][key], rel=1e-5, abs=1e-6), key
    # clip order: clip 4 alone gives its own value
    alone = evaluate(Persistence(), clips[4:5], 3, 3, torch.device("cpu"))["headline"]["mse"]
    assert result["per_clip"]["mse"][4] == pytest.approx(alone, rel=1e-5)
    assert "per_clip" not in evaluate(Persistence(), clips, 3, 3, torch.device("cpu"))


# --------------------------------------------------------------------------- trivial baselines
def toy_batches(n=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(3, 6, 2, 8, 10, generator=generator) for _ in range(n)]


def test_blank_and_mean_shapes_and_the_mean_of_the_training_frames():
    blank = models.create_model("blank", channels=2, height=8, width=10)
    mean = models.create_model("mean", channels=2, height=8, width=10)
    assert models.get_spec("blank").family == models.get_spec("mean").family == "baseline"
    batches = toy_batches()
    mean.fit_from_data(iter(batches))
    expected = torch.cat(batches).mean(dim=(0, 1))  # every frame of every training clip
    frames = torch.rand(4, 5, 2, 8, 10)
    with torch.no_grad():
        zero, average = blank(frames, 3, 2).future, mean(frames, 3, 2).future
    assert zero.shape == average.shape == (4, 2, 2, 8, 10)
    assert torch.equal(zero, torch.zeros_like(zero))
    torch.testing.assert_close(average, expected.expand(4, 2, 2, 8, 10), rtol=0, atol=1e-6)
    assert sum(p.numel() for p in mean.parameters()) == 0  # nothing for the loop to train


def test_the_mean_baseline_never_sees_test_frames():
    mean = models.create_model("mean", channels=2, height=8, width=10)
    mean.fit_from_data(iter(toy_batches()))
    frames = torch.rand(2, 6, 2, 8, 10)
    with torch.no_grad():
        before = mean(frames, 3, 3).future
        after = mean(torch.rand_like(frames), 3, 3).future  # other inputs and futures
    assert torch.equal(before, after)
    assert not torch.equal(before, mean(frames, 3, 3).future.zero_())  # a fitted, non-zero frame


def test_the_harness_fits_the_mean_from_the_training_stream(tmp_path):
    out = tmp_path / "results"
    assert main(["--preset", "smoke", "--models", "blank", "mean", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == 0
    (folder,) = {p.parent for p in out.rglob("records.jsonl")}
    records = {r["model"]: r for r in ResultsStore(folder).records()}
    blank, mean = (records[m]["metrics"]["headline"]["mse"] for m in ("blank", "mean"))
    assert mean < blank  # fitted: the mean frame beats the blank one on Moving MNIST
    assert len(records["mean"]["metrics"]["per_clip"]["mse"]) == 8  # smoke: 8 test clips
    assert records["mean"]["reference"] is None and records["mean"]["cost"]["params"] == 0


def test_an_unfitted_mean_raises_on_no_batches():
    with pytest.raises(ValueError, match="no training batches"):
        models.create_model("mean").fit_from_data(itertools.islice(iter([]), 0))
