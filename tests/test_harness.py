"""End to end through the CLI on the smoke preset: outputs, skipping done cells, failures."""
import json

import pytest

from bench.cli.main import main
from bench.store import ResultsStore
from models.persistence import Persistence


@pytest.fixture
def run(tmp_path):
    def run_cli(*args):
        return main(["--preset", "smoke", "--out", str(tmp_path / "results"),
                     "--cache-dir", str(tmp_path / "cache"), "--no-progress", *args])
    return run_cli


def folder_of(tmp_path):
    return tmp_path / "results" / "mmnist-embedded-32px" / "smoke"


def test_smoke_run_writes_store_tables_and_plots(run, tmp_path, capsys):
    assert run("--models", "convlstm", "persistence") == 0
    folder = folder_of(tmp_path)
    printed = capsys.readouterr().out
    assert "| convlstm" in printed and f"results: {folder}" in printed
    for name in ("records.jsonl", "summary.md", "summary.csv", "per_frame.csv", "per_frame.png",
                 "pareto.png", "loss_curves.png", "README.md", "summary.tex",
                 "examples/convlstm__seed0.png", "examples/persistence__seed0.gif"):
        assert (folder / name).stat().st_size > 0, name
    records = ResultsStore(folder).records()
    assert [r["model"] for r in records] == ["convlstm", "persistence"]
    record = records[0]
    for field in ("config", "config_hash", "metrics", "cost", "wall_s", "status", "device",
                  "versions", "git_commit", "started_at", "finished_at", "dataset_info"):
        assert field in record, field
    assert len(record["metrics"]["per_frame"]["mse"]) == 4  # smoke predicts 4 frames
    assert record["cost"]["params"] > 0 and record["cost"]["gmacs_fvcore"] > 0
    assert record["train"]["steps"] == 2 * 3 * 2  # epochs x steps x (forward + reversed pass)


def test_rerun_skips_cells_already_done(run, tmp_path, capsys):
    assert run("--models", "persistence") == 0
    assert run("--models", "persistence", "convlstm") == 0
    assert "skip persistence seed 0" in capsys.readouterr().out
    models_run = [r["model"] for r in ResultsStore(folder_of(tmp_path)).records()]
    assert models_run == ["persistence", "convlstm"]
    # a different configuration is a different cell
    assert run("--models", "persistence", "--set", "lr=0.0005") == 0
    assert len(ResultsStore(folder_of(tmp_path)).records()) == 3


class Exploding(Persistence):
    def forward(self, frames, in_len, out_len, truth_mask=None):
        raise RuntimeError("boom")


@pytest.fixture
def exploding_model(temporary_model):
    return temporary_model("zz_exploding", Exploding)


def test_a_failing_model_is_recorded_and_the_others_go_on(run, tmp_path, exploding_model, capsys):
    assert run("--models", exploding_model, "persistence") == 1
    records = {r["model"]: r for r in ResultsStore(folder_of(tmp_path)).records()}
    assert records[exploding_model]["status"] == "failed"
    assert "RuntimeError: boom" in records[exploding_model]["error"]
    assert records["persistence"]["status"] == "ok"
    summary = (folder_of(tmp_path) / "summary.md").read_text()
    assert "failed: RuntimeError: boom" in summary


def test_unknown_model_is_a_clear_error(run, capsys):
    assert run("--models", "convlstn") == 2
    assert "unknown model 'convlstn'; did you mean 'convlstm'" in capsys.readouterr().err


def test_list_models_json(capsys):
    assert main(["--list-models", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["modernn"]["params"] == 5_867_600
    assert rows["persistence"]["params"] == 0
    assert "2110.12978" in rows["modernn"]["paper"]


def test_list_models_table(capsys):
    assert main(["--list-models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("modernn"))
    assert "5,867,600" in line


def test_a_record_from_another_kind_of_device_or_precision_never_makes_a_cell_done(
        run, tmp_path, capsys):
    assert run("--models", "persistence") == 0
    store = ResultsStore(folder_of(tmp_path))
    [record] = store.records()
    assert record["device_kind"].startswith("cpu:") and record["precision"] == "none"
    lines = store.path.read_text().replace(record["device_kind"], "cuda:NVIDIA H100 80GB HBM3")
    store.path.write_text(lines)
    assert run("--models", "persistence") == 0  # a GPU record does not stand in for this CPU
    assert "skip" not in capsys.readouterr().out
    assert run("--models", "persistence") == 0
    assert "--rerun trains it again" in capsys.readouterr().out
    assert run("--models", "persistence", "--rerun") == 0
    assert len(store.records()) == 3


def test_rebuilding_a_report_writes_the_same_bytes(run, tmp_path):
    from bench.report import write_report

    assert run("--models", "persistence") == 0
    folder = folder_of(tmp_path)
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".png", ".pdf", ".gif", ".md"))
    before = {p: p.read_bytes() for p in files}
    write_report(folder)
    assert {p: p.read_bytes() for p in files} == before


def test_profile_only_run_writes_cost_tables(run, tmp_path, capsys, monkeypatch):
    import bench.grid.runner
    cost = {"params": 0, "used_params": 0, "gmacs_fvcore": 0.0, "train_seq_s": 0.0,
            "infer_seq_s": 100.0, "train_peak_mb": 0.0, "infer_peak_mb": 1.0}
    monkeypatch.setattr(bench.grid.runner, "profile_model", lambda *a, **k: dict(cost))
    assert run("--models", "persistence", "--profile-only") == 0
    assert "| persistence" in capsys.readouterr().out  # the table is still printed
    folder = folder_of(tmp_path)
    for name in ("summary.md", "summary.csv", "README.md", "cost_bars.png", "cost_bars.pdf"):
        assert (folder / name).stat().st_size > 0, name


def test_comma_separated_models_say_names_are_space_separated(run, capsys):
    assert run("--models", "modernn,convlstm", "persistence") == 2
    err = capsys.readouterr().err
    assert "space-separated" in err and "use: --models modernn convlstm persistence" in err


def test_every_unknown_model_is_reported(run, capsys):
    assert run("--models", "convlstn", "persistence", "modrnn") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line
    assert "'convlstn'; did you mean 'convlstm'" in err and "'modrnn'; did you mean 'modernn'" in err


def test_missing_dataset_config_names_the_path(run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run("--dataset-config", "x.toml") == 2
    err = capsys.readouterr().err
    assert err == f"error: dataset config 'x.toml' not found (looked at {tmp_path / 'x.toml'})\n"


def test_help_names_the_subcommands_and_every_option(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "run_bench.py report" in text and "run_bench.py download" in text
    assert "download mnist|mfmnist" in text and "Fashion-MNIST" in text
    assert "random seeds" in text
    from bench.cli.run import build_parser
    assert all(action.help for action in build_parser()._actions)
