"""--budget: every model trains until the same budget is spent, its schedule laid out over it."""
import math
import statistics

import pytest

import bench.grid.runner
import bench.train.loop
from bench.cli.main import main
from bench.store import ResultsStore
from bench.train.budget import CHECKPOINT_FRACTIONS, Budget, parse_budget

SMOKE = "mmnist-embedded-32px/smoke"
MIN_LR = 1e-6


@pytest.fixture
def no_profile(monkeypatch):
    """Cost profiling stubbed out; a fixed per-sequence FLOP count (2 per parameter)."""
    monkeypatch.setattr(bench.grid.runner, "profile_model", lambda model, *a, **k: {
        "params": sum(p.numel() for p in model.parameters()),
        "train_flops_per_seq": 2.0 * sum(p.numel() for p in model.parameters())})


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # the generated evaluation clips, made once


def _run(out, cache, *args):
    return main(["--preset", "smoke", "--out", str(out), "--cache-dir", str(cache),
                 "--no-progress", *args])


def _records(out):
    return {r["model"]: r for r in ResultsStore(out / SMOKE).latest()}


@pytest.fixture
def no_report(monkeypatch):
    import bench.report
    monkeypatch.setattr(bench.report, "write_report",
                        lambda folder, **options: (folder / "summary.md").write_text(""))


def test_a_flop_budget_stops_every_model_within_one_iteration_and_ends_its_schedule(
        tmp_path, cache, no_profile, no_report):
    budget = 300_000
    assert _run(tmp_path / "r", cache, "--models", "convlstm", "predrnn",
                "--budget", f"flops={budget}") == 0
    records = _records(tmp_path / "r")
    iterations = set()
    for name, record in records.items():
        spent = record["train"]["budget"]
        per_iteration = spent["flops_per_iteration"]
        assert per_iteration == 2.0 * record["cost"]["params"] * 2  # batch 2
        assert spent["spent_flops"] <= budget < spent["spent_flops"] + per_iteration, name
        assert spent["spent_iterations"] == budget // per_iteration
        iterations.add(spent["spent_iterations"])
        history = record["train"]["history"]
        # validation at the budget's checkpoints, the last at the budget, stamped with compute
        assert history[-1]["fraction"] == 1.0 and len(history) <= len(CHECKPOINT_FRACTIONS)
        assert [h["train_flops"] for h in history] == [h["iteration"] * per_iteration
                                                       for h in history]
        assert all(a["train_s"] < b["train_s"] for a, b in zip(history, history[1:], strict=False))
        # the schedule reaches its end values at the budget, not before
        assert history[-1]["lr"] == pytest.approx(MIN_LR) and history[-1]["sampling_eta"] == 0
        assert history[0]["lr"] > 10 * MIN_LR and history[0]["sampling_eta"] > 0
        assert record["config"]["budget"] == {"kind": "flops", "amount": budget}
        assert record["budget"] == {"kind": "flops", "amount": budget}
    assert len(iterations) == 2  # the two models cost differently: different iteration counts


def _within(record, budget):
    """The record states the flops budget, and spent it to within one iteration."""
    spent = record["train"]["budget"]
    assert record["budget"] == record["config"]["budget"] == {"kind": "flops", "amount": budget}
    assert spent["kind"] == "flops" and spent["amount"] == budget
    assert spent["spent_flops"] <= budget < spent["spent_flops"] + spent["flops_per_iteration"]
    assert spent["spent_iterations"] == budget // spent["flops_per_iteration"]
    assert record["train"]["history"][-1]["fraction"] == 1.0
    return spent["spent_iterations"]


def test_a_budget_with_two_seeds_records_each_seed_under_the_budget(tmp_path, cache, no_profile,
                                                                     no_report):
    budget = 700_000  # 9 iterations of convlstm: past the smoke preset's 2 x 3
    assert _run(tmp_path / "r", cache, "--models", "convlstm", "--seeds", "0", "1",
                "--budget", f"flops={budget}") == 0
    records = ResultsStore(tmp_path / "r" / SMOKE).records()
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert [_within(r, budget) for r in records] == [9, 9]
    a, b = records
    assert a["config_hash"] == b["config_hash"]  # one configuration, two seeds
    # each seed trained on its own (not one resuming the other's checkpoint)
    assert a["train"]["resumed_from_step"] is None and b["train"]["resumed_from_step"] is None
    assert a["metrics"]["headline"]["mse"] != b["metrics"]["headline"]["mse"]


def test_budgeted_shards_each_finish_under_the_budget_and_merge_into_one_report(
        tmp_path, cache, no_profile):
    from bench.grid.shards import shard_cells
    from bench.report.compute import equal_compute_table

    budget, names, out = 700_000, ["convlstm", "predrnn"], tmp_path / "r"
    store = ResultsStore(out / SMOKE)
    with pytest.MonkeyPatch.context() as patch:  # each shard's own report: skipped
        import bench.report
        patch.setattr(bench.report, "write_report",
                      lambda folder, **options: (folder / "summary.md").write_text(""))
        for i in (1, 2):  # as two jobs of an array, one after the other, into one store
            before = len(store.records())
            assert _run(out, cache, "--models", *names, "--seeds", "0", "1",
                        "--budget", f"flops={budget}", "--shard", f"{i}/2") == 0
            new = store.records()[before:]
            assert sorted((r["model"], r["seed"]) for r in new) == shard_cells(names, [0, 1],
                                                                               (i, 2))
            for r in new:
                _within(r, budget)
    records = store.records()
    assert sorted((r["model"], r["seed"]) for r in records) == shard_cells(names, [0, 1])
    for name in names:  # a model's seeds, on different shards, spent the same iterations
        assert len({_within(r, budget) for r in records if r["model"] == name}) == 1
    assert main(["report", "--out", str(out)]) == 0  # one report from the merged store
    table = equal_compute_table(store.latest())
    assert sorted(table["model"]) == names and list(table["seeds"]) == [2, 2]
    assert set(table["budget"]) == {f"flops={budget}"}
    index = (out / SMOKE / "README.md").read_text()
    section = index.split("## Test MSE at equal compute")[1].split("## ")[0]
    assert all(f"| {name} " in section for name in names) and f"flops={budget}" in section
    assert (out / SMOKE / "accuracy_vs_compute.png").is_file()
    summary = (out / SMOKE / "summary.md").read_text()
    assert all(name in summary for name in names)


def test_the_budget_is_part_of_the_configuration_hash(tmp_path, cache, no_profile):
    from bench.cli.run import build_parser, make_request
    from bench.grid.runner import _base_record, load_data

    def record(*extra):
        args = build_parser().parse_args(["--preset", "smoke", "--models", "convlstm",
                                          "--out", str(tmp_path), *extra])
        request = make_request(args)
        data = load_data(request.preset.data, None, str(cache))
        return _base_record("convlstm", 0, request, data)

    plain, steps, flops = record(), record("--budget", "steps=5"), record("--budget", "flops=5")
    assert len({plain["config_hash"], steps["config_hash"], flops["config_hash"]}) == 3
    assert "budget" not in plain["config"]  # unbudgeted cells keep their hash


def test_the_learning_rate_each_iteration_uses_follows_the_budget(tmp_path, cache, no_profile,
                                                                  no_report, monkeypatch):
    used, step = [], bench.train.loop.Trainer.training_step

    def spy(self, frames, schedule_step, generator):
        used.append((self.optimizer.param_groups[0]["lr"], schedule_step))
        return step(self, frames, schedule_step, generator)

    monkeypatch.setattr(bench.train.loop.Trainer, "training_step", spy)
    assert _run(tmp_path / "r", cache, "--models", "convlstm",
                "--budget", "steps=8") == 0
    assert len(used) == 8
    lr0 = 1e-3
    for i, (lr, schedule_step) in enumerate(used):
        assert lr == pytest.approx(MIN_LR + (lr0 - MIN_LR) * (1 + math.cos(math.pi * i / 8)) / 2)
        assert schedule_step == pytest.approx(i / 8 * 6)  # the smoke preset's 2 x 3 iterations


def test_a_checkpoint_s_train_loss_covers_every_iteration_since_the_last(
        tmp_path, cache, no_profile, no_report, monkeypatch):
    """Each checkpoint's train_loss is the mean over every iteration since the one before, those
    that end an epoch (of the unbudgeted stream) included: none is dropped unread."""
    losses, step = [], bench.train.loop.Trainer.training_step

    def spy(self, *args):
        loss = step(self, *args)
        losses.append(loss.item())
        return loss

    monkeypatch.setattr(bench.train.loop.Trainer, "training_step", spy)
    # steps_per_epoch 3, losses read every 25: validation at iterations 1, 2, 4, 8
    assert _run(tmp_path / "r", cache, "--models", "convlstm", "--budget", "steps=8") == 0
    history, before = _records(tmp_path / "r")["convlstm"]["train"]["history"], 0
    assert [h["iteration"] for h in history] == [1, 2, 4, 8] and len(losses) == 8
    for h in history:
        assert h["train_loss"] == pytest.approx(statistics.fmean(losses[before:h["iteration"]]))
        before = h["iteration"]


def test_a_resumed_budgeted_run_ends_where_an_uninterrupted_one_does(tmp_path, cache, no_profile,
                                                                    no_report, monkeypatch):
    args = ["--models", "convlstm", "--budget", "flops=400000",
            "--set", "checkpoint_every_steps=2"]
    assert _run(tmp_path / "ref", cache, *args) == 0
    save, saved = bench.train.loop.Trainer._save, []

    def save_then_stop(self, name, epoch, result, batch=0, **kwargs):
        save(self, name, epoch, result, batch=batch, **kwargs)
        saved.append(name)
        if saved.count("last.pt") == 3:
            raise KeyboardInterrupt  # as a kill right after a checkpoint

    monkeypatch.setattr(bench.train.loop.Trainer, "_save", save_then_stop)
    assert _run(tmp_path / "run", cache, *args) == 130
    assert not (tmp_path / "run" / SMOKE / "records.jsonl").exists()
    monkeypatch.setattr(bench.train.loop.Trainer, "_save", save)
    assert _run(tmp_path / "run", cache, *args) == 0
    ref, got = _records(tmp_path / "ref")["convlstm"], _records(tmp_path / "run")["convlstm"]
    assert got["train"]["resumed_from_step"] and ref["train"]["resumed_from_step"] is None
    assert got["metrics"] == ref["metrics"]

    def timeless(history):
        return [{k: v for k, v in h.items() if k != "train_s"} for h in history]

    assert timeless(got["train"]["history"]) == timeless(ref["train"]["history"])
    for key in ("spent_iterations", "spent_flops", "iterations"):
        assert got["train"]["budget"][key] == ref["train"]["budget"][key]


def test_a_budget_resumed_past_the_preset_s_epochs_says_where_it_resumes(
        tmp_path, cache, no_profile, no_report, monkeypatch, capsys):
    args = ["--models", "convlstm", "--budget", "steps=9", "--set", "checkpoint_every_steps=4"]
    save = bench.train.loop.Trainer._save

    def save_then_stop(self, name, epoch, result, batch=0, **kwargs):
        save(self, name, epoch, result, batch=batch, **kwargs)
        if name == "last.pt" and kwargs["budget_state"]["iterations"] == 8:
            raise KeyboardInterrupt  # as a kill right after the checkpoint at iteration 8

    monkeypatch.setattr(bench.train.loop.Trainer, "_save", save_then_stop)
    assert _run(tmp_path / "r", cache, *args) == 130
    monkeypatch.setattr(bench.train.loop.Trainer, "_save", save)
    capsys.readouterr()
    assert _run(tmp_path / "r", cache, *args) == 0
    # iteration 8 of the stream of 3-iteration epochs: the smoke preset has only 2 of them
    assert "resuming convlstm seed 0 from epoch 3, iteration 2 " in capsys.readouterr().out
    assert _records(tmp_path / "r")["convlstm"]["train"]["budget"]["spent_iterations"] == 9


def test_a_time_budget_counts_training_seconds_and_ends_the_schedule_at_it(
        tmp_path, cache, no_profile, no_report):
    assert _run(tmp_path / "r", cache, "--models", "convlstm",
                "--budget", "time=1.5") == 0
    record = _records(tmp_path / "r")["convlstm"]
    spent, history = record["train"]["budget"], record["train"]["history"]
    assert spent["spent_train_s"] >= 1.5
    per_iteration = spent["spent_train_s"] / spent["spent_iterations"]
    assert spent["spent_train_s"] < 1.5 + 3 * per_iteration + 1.0  # stops at the first iteration past it
    assert history[-1]["fraction"] == 1.0 and history[-1]["lr"] == pytest.approx(MIN_LR)
    assert spent["flops_per_iteration"] and spent["spent_flops"]  # FLOPs known: stamped too


@pytest.mark.parametrize("text,expected", [
    ("gpus=3", "unknown budget; accepted: flops=<N>"),
    ("flops", "unknown budget"),
    ("flops=-5", "'-5' is not a positive number"),
    ("time=abc", "'abc' is not a positive number"),
    ("steps=2.5", "steps must be a whole number"),
    ("time=nan", "is not a positive number"),
])
def test_bad_budgets_are_clear_errors(tmp_path, cache, capsys, text, expected):
    with pytest.raises(ValueError, match=expected):
        parse_budget(text)
    assert _run(tmp_path, cache, "--models", "convlstm", "--budget", text) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --budget") and text in err and expected in err
    assert err.count("\n") == 1


def test_a_flop_budget_smaller_than_one_iteration_is_a_clear_error():
    from bench.config import get_preset
    from bench.train.budget import plan_budget
    with pytest.raises(ValueError, match="more than the whole budget"):
        plan_budget(Budget("flops", 10), get_preset("smoke").train, {"train_flops_per_seq": 100})
    with pytest.raises(ValueError, match="needs the model's training FLOPs"):
        plan_budget(Budget("flops", 10), get_preset("smoke").train, {})
