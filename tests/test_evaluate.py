"""``run_bench.py evaluate``: a trained smoke cell's checkpoint tested on other data, recorded as such."""
import shutil
from pathlib import Path

import pytest
import torch

import bench.grid.costs
import bench.report
import models
from bench.cli.main import main
from bench.config import get_preset
from bench.evaluation.loop import evaluate
from bench.grid.cross_eval import check_fits
from bench.grid.request import load_data
from bench.store import ResultsStore

TRAINED = "mmnist-embedded-32px"  # smoke: embedded digits, 32x32 frames, 4 -> 4
THREE = "mmnist-embedded-3digits-32px"


def _no_profile(model, *args, **kwargs):
    return {"params": sum(p.numel() for p in model.parameters())}


def _empty_report(folder, **options):
    (Path(folder) / "summary.md").write_text("")
    return Path(folder) / "summary.md"


def train(out, cache, *args):
    """The training CLI at the smoke preset, cost profiling and the report stubbed out."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.grid.costs, "profile_model", _no_profile)
        patch.setattr(bench.report, "write_report", _empty_report)
        return main(["--preset", "smoke", "--out", str(out), "--cache-dir", str(cache),
                     "--no-progress", *args])


@pytest.fixture(scope="module")
def trained_tree(tmp_path_factory):
    """convlstm and persistence trained once at the smoke preset (cost profiling and the report
    stubbed out); each test gets its own copy."""
    root = tmp_path_factory.mktemp("trained")
    assert train(root / "results", root / "cache", "--models", "convlstm", "persistence") == 0
    return root


@pytest.fixture
def out(trained_tree, tmp_path):
    shutil.copytree(trained_tree / "results", tmp_path / "results")
    return tmp_path / "results"


@pytest.fixture
def cache(trained_tree):
    return trained_tree / "cache"


@pytest.fixture
def evaluate_cli(out, cache, monkeypatch):
    """The evaluate subcommand on the copy; the report is written only when asked (seconds of
    imports and plots)."""
    real = bench.report.write_report

    def run(*args, report=False):
        monkeypatch.setattr(bench.report, "write_report", real if report else _empty_report)
        return main(["evaluate", "--from-preset", "smoke", "--out", str(out), "--cache-dir",
                     str(cache), *args])
    return run


def training_record(out, model="convlstm"):
    return next(r for r in ResultsStore(out / TRAINED / "smoke").records() if r["model"] == model)


def test_evaluate_on_three_digits_records_both_sides(evaluate_cli, out, capsys):
    before = (out / TRAINED / "smoke" / "records.jsonl").read_bytes()
    assert evaluate_cli("--models", "convlstm", "persistence", "--dataset", "mmnist3") == 0
    assert f"results: {out / THREE / 'smoke'}" in capsys.readouterr().out
    records = {r["model"]: r for r in ResultsStore(out / THREE / "smoke").records()}
    assert set(records) == {"convlstm", "persistence"}
    record, trained = records["convlstm"], training_record(out)
    assert record["mode"] == "evaluate" and record["status"] == "ok"
    assert (record["dataset"], record["preset"], record["seed"]) == (THREE, "smoke", 0)
    assert record["dataset_info"]["digits_per_clip"] == 3
    source = record["trained_on"]
    assert (source["dataset"], source["preset"], source["config_hash"]) == (
        TRAINED, "smoke", trained["config_hash"])
    best = out / TRAINED / "smoke" / "checkpoints" / f"convlstm__seed0__{trained['config_hash']}" / "best.pt"
    assert source["checkpoint"]["path"] == str(best)
    assert source["checkpoint"]["epoch"] == trained["train"]["best_epoch"]
    assert source["test_headline"] == trained["metrics"]["headline"]
    assert record["evaluated_on"] == {"dataset": THREE, "preset": "smoke", "in_len": 4,
                                      "out_len": 4, "test_clips": 8}
    assert len(record["metrics"]["per_clip"]["mse"]) == 8
    assert records["persistence"]["trained_on"]["checkpoint"] is None  # nothing to load
    # the training store is never written to
    assert (out / TRAINED / "smoke" / "records.jsonl").read_bytes() == before


def test_metrics_equal_evaluating_the_checkpoint_directly(evaluate_cli, out, cache):
    assert evaluate_cli("--models", "convlstm", "--dataset", "mmnist3") == 0
    [record] = ResultsStore(out / THREE / "smoke").records()
    trained = training_record(out)
    model = models.create_model("convlstm", **trained["config"]["model"])
    state = torch.load(record["trained_on"]["checkpoint"]["path"], weights_only=True)
    model.load_state_dict(state["model"])
    preset = get_preset("smoke")
    preset.data.dataset, preset.data.digits_per_clip = "mmnist", 3
    data = load_data(preset.data, None, str(cache))
    assert data.name == THREE
    direct = evaluate(model, data.test, 4, 4, torch.device("cpu"), 8, per_clip=True)
    assert record["metrics"]["headline"] == pytest.approx(direct["headline"], rel=1e-6)
    assert record["metrics"]["per_clip"] == direct["per_clip"]
    for metric, values in direct["per_frame"].items():
        assert record["metrics"]["per_frame"][metric] == pytest.approx(values, rel=1e-6)


def test_the_training_test_set_reproduces_the_training_metrics(evaluate_cli, out, cache, capsys):
    assert evaluate_cli("--models", "convlstm", "--dataset", "mmnist") == 0
    records = ResultsStore(out / TRAINED / "smoke").records()
    assert [r["mode"] for r in records] == ["train", "train", "evaluate"]  # appended, after
    trained, record = records[0], records[-1]
    assert record["metrics"]["headline"] == pytest.approx(trained["metrics"]["headline"], rel=1e-6)
    assert record["metrics"]["per_clip"] == trained["metrics"]["per_clip"]
    # the evaluate record never makes a training cell done nor hides one
    assert [r["mode"] for r in ResultsStore(out / TRAINED / "smoke").latest()].count("train") == 2
    assert train(out, cache, "--models", "convlstm") == 0
    assert "skip convlstm seed 0" in capsys.readouterr().out


def test_a_missing_cell_or_checkpoint_is_a_clear_error(evaluate_cli, out, cache, capsys):
    assert evaluate_cli("--models", "predrnn", "--seeds", "0", "--dataset", "mmnist3") == 2
    err = capsys.readouterr().err
    assert (f"error: no finished training of predrnn seed 0 (mode train, status ok, preset smoke) "
            f"in {out / TRAINED / 'smoke' / 'records.jsonl'}") in err
    assert (f"train it with: python run_bench.py --models predrnn --dataset mmnist --preset smoke "
            f"--seeds 0 --out {out}") in err
    checkpoint = next((out / TRAINED / "smoke" / "checkpoints").glob("convlstm__*/best.pt"))
    checkpoint.unlink()
    assert evaluate_cli("--models", "convlstm", "--dataset", "mmnist3") == 2
    assert f"is missing: {checkpoint}" in capsys.readouterr().err
    # the mean frame keeps what it learnt from its training data in no checkpoint
    assert train(out, cache, "--models", "mean") == 0
    assert evaluate_cli("--models", "mean", "--dataset", "mmnist3") == 2
    assert "error: mean keeps what it learns from its training data in no checkpoint" in (
        capsys.readouterr().err)
    assert not (out / THREE).exists()  # nothing recorded


def test_several_trained_configurations_need_from_hash(evaluate_cli, out, cache, capsys):
    assert train(out, cache, "--models", "persistence", "--set", "eval_batch_size=4") == 0
    assert evaluate_cli("--models", "persistence", "--dataset", "mmnist3") == 2
    err = capsys.readouterr().err
    assert "trained in 2 configurations" in err and "train.eval_batch_size=4" in err
    new = ResultsStore(out / TRAINED / "smoke").records()[-1]["config_hash"]
    assert evaluate_cli("--models", "persistence", "--dataset", "mmnist3", "--from-hash",
                        new[:6]) == 0
    [record] = ResultsStore(out / THREE / "smoke").records()
    assert record["trained_on"]["config_hash"] == new


def test_incompatible_frames_are_a_clear_error_naming_both_shapes(evaluate_cli, capsys):
    assert evaluate_cli("--models", "convlstm", "--dataset", "mmnist3", "--preset", "quick") == 2
    err = capsys.readouterr().err
    assert "takes 1x32x32 frames (C x H x W); mmnist-embedded-3digits has 1x64x64" in err


def test_frame_counts_may_differ_unless_the_model_is_built_for_them(evaluate_cli, out, cache):
    assert evaluate_cli("--models", "convlstm", "--dataset", "mmnist", "--out-len", "6") == 0
    record = ResultsStore(out / TRAINED / "smoke").records()[-1]
    assert record["evaluated_on"]["out_len"] == 6
    assert len(record["metrics"]["per_frame"]["mse"]) == 6
    # a model whose constructor takes in_len (SimVP) keeps it
    trained = training_record(out)
    trained["config"]["model"]["in_len"] = 4
    data = load_data(get_preset("smoke").data, None, str(cache))
    data.in_len = 3
    with pytest.raises(ValueError, match=r"is built for in_len = 4 .* the test clips have 3 -> 4; "
                                         r"use --in-len 4"):
        check_fits({"record": trained}, data)


def test_a_done_evaluation_is_skipped_unless_rerun(evaluate_cli, out, capsys):
    args = ("--models", "convlstm", "--dataset", "mmnist3")
    assert evaluate_cli(*args) == 0
    assert evaluate_cli(*args) == 0
    assert "skip convlstm seed 0 trained on mmnist-embedded-32px (smoke)" in capsys.readouterr().out
    assert len(ResultsStore(out / THREE / "smoke").records()) == 1
    assert evaluate_cli(*args, "--rerun") == 0
    assert len(ResultsStore(out / THREE / "smoke").records()) == 2


def test_reports_show_evaluations_in_their_own_table(evaluate_cli, out):
    assert evaluate_cli("--models", "convlstm", "persistence", "--dataset", "mmnist3",
                        report=True) == 0
    summary = (out / THREE / "smoke" / "summary.md").read_text()
    assert summary.startswith(f"# Cross-dataset evaluation: {THREE}, preset smoke")
    row = next(line for line in summary.splitlines() if line.startswith("| convlstm"))
    assert f"| {TRAINED} (smoke) | {THREE} (smoke, 4 -> 4) |" in row
    csv = (out / THREE / "smoke" / "cross_eval.csv").read_text()
    assert csv.count("\n") == 3 and ",checkpoints/convlstm__seed0__" in csv and str(out) not in csv
    # evaluated on the training data itself: a table of its own, out of the training tables
    assert evaluate_cli("--models", "convlstm", "--dataset", "mmnist", report=True) == 0
    folder = out / TRAINED / "smoke"
    summary = (folder / "summary.md").read_text()
    accuracy, cross = summary.split("# Cross-dataset evaluation")
    assert accuracy.count("| convlstm") == 2  # accuracy and cost tables: the training record only
    row = next(line for line in cross.splitlines() if line.startswith("| convlstm"))
    assert f"| {TRAINED} (smoke) | {TRAINED} (smoke, 4 -> 4) |" in row
    assert "## Cross-dataset evaluation" in (folder / "README.md").read_text()
    per_frame = (folder / "per_frame.csv").read_text()
    assert per_frame.count("\nconvlstm,") == 4  # 4 frames of the one training record


def test_help_names_the_subcommand_and_its_example(capsys):
    assert main(["--help"]) == 0
    assert ("run_bench.py evaluate --models convlstm --from-dataset mmnist --dataset mmnist3"
            in capsys.readouterr().out)
    assert main(["evaluate", "--help"]) == 0
    assert "--from-hash HASH" in capsys.readouterr().out
    assert main(["evaluate", "--models", "convlstm"]) == 2  # the test data is required
    assert "the following arguments are required: --dataset" in capsys.readouterr().err


def test_from_hash_does_not_apply_to_a_model_without_training(evaluate_cli, out, capsys):
    """--from-hash names convlstm's configuration; persistence (no parameters, another hash) is
    evaluated as it is, with a line saying so, not refused with a command that only skips."""
    trained = training_record(out)["config_hash"]
    assert evaluate_cli("--models", "convlstm", "persistence", "--dataset", "mmnist3",
                        "--from-hash", trained[:6], "--no-progress") == 0
    printed = capsys.readouterr().out
    assert "note: persistence seed 0 has no training (no parameters), so --from-hash" in printed
    records = ResultsStore(out / THREE / "smoke").records()
    assert sorted(r["model"] for r in records) == ["convlstm", "persistence"]


def test_a_hash_no_training_has_names_the_hashes_there(evaluate_cli, out, capsys):
    trained = training_record(out)["config_hash"]
    assert evaluate_cli("--models", "convlstm", "--dataset", "mmnist3", "--from-hash",
                        "ffffff") == 2
    err = capsys.readouterr().err
    assert f"have config hash {trained}: pass one of them to --from-hash" in err
    assert "train it with" not in err
