"""Reports of folders that hold several configurations: one row per configuration (budget, size
match, device, precision), comparisons within a protocol, the training run's own throughput, a
failure after a success, non-finite metrics, and a report written completely or not at all."""
import json
import re

import pytest
from test_report import record

from bench.report import plots, write_report
from bench.report.aggregate import accuracy_frame, configurations, cost_frame
from bench.store import ResultsStore
from bench.train.loop import TimingChunks


def configured(model, seed, mse, config_hash="epochs", budget=None, match=None,
               device="cpu:Test CPU", precision="none", **fields):
    """A hand-written training record of one configuration: the hash and the fields that say
    what differs (``config`` as the runner writes it: every section but the model's own is the
    protocol)."""
    row = record(model, seed, mse)
    config = {"model": {"hidden": 8}, "train": {"epochs": 2, "batch_size": 2}}
    if budget:
        config["budget"] = budget
    if match:
        config["match"] = {"by": match["by"], "model": "modernn"}
    return {**row, "config_hash": f"{model}-{config_hash}", "config": config, "budget": budget,
            "match": match, "device_kind": device, "precision": precision, **fields}


STEPS = {"kind": "steps", "amount": 10.0}


def budgeted(model, seed, mse):
    row = configured(model, seed, mse, "steps10", budget=STEPS)
    spent = {"kind": "steps", "amount": 10.0, "spent_flops": 1e9, "spent_train_s": 3.0,
             "spent_iterations": 10}
    row["train"] = {**row["train"], "budget": spent,
                    "history": [{**h, "train_flops": 5e8 * (i + 1), "train_s": 1.5 * (i + 1)}
                                for i, h in enumerate(row["train"]["history"])]}
    return row


def frame_of(tmp_path, rows, reference="modernn"):
    store = ResultsStore(tmp_path)
    for row in rows:
        store.append(row)
    return accuracy_frame(store.latest(), reference).set_index("model")


def test_a_budget_beside_epochs_is_its_own_row_and_compared_within_its_protocol(tmp_path):
    # the trial: epochs seeds 0 and 1, then a budget run of seed 0 into the same folder
    rows = [configured("modernn", 0, 107.63), configured("modernn", 1, 113.85),
            configured("convlstm", 0, 120.0), configured("convlstm", 1, 122.0),
            budgeted("modernn", 0, 103.13), budgeted("convlstm", 0, 110.0)]
    acc = frame_of(tmp_path, rows)
    assert list(acc.index) == ["modernn", "convlstm", "modernn (budget steps=10)",
                               "convlstm (budget steps=10)"]
    assert acc.loc["modernn", "seeds"] == 2  # the epoch-trained seed 0 is not dropped
    assert acc.loc["modernn", "mse"] == pytest.approx((107.63 + 113.85) / 2)
    assert acc.loc["modernn (budget steps=10)", "mse"] == pytest.approx(103.13)
    assert acc.loc["convlstm (budget steps=10)", "compared_with"] == "modernn (budget steps=10)"
    assert acc.loc["convlstm (budget steps=10)", "delta_mse"] == pytest.approx(110.0 - 103.13)
    assert acc.loc["convlstm", "compared_with"] == "modernn"
    assert acc.loc["modernn (budget steps=10)", "is_reference"]

    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "4 configurations of 2 models, under 2 protocols" in summary
    assert "convlstm (budget steps=10) with modernn (budget steps=10)" in summary
    readme = (tmp_path / "README.md").read_text()
    assert "## Test MSE at equal compute" in readme and "accuracy_vs_compute.png" in readme


def test_matched_beside_unmatched_rows_and_the_size_section_stays(tmp_path):
    match = {"by": "params", "target": 370_000, "target_from": "modernn", "scalable": True,
             "width_arg": "hidden", "default_width": 8, "width": 11, "achieved": 371_000}
    rows = [configured("convlstm", 0, 120.0), configured("convlstm", 1, 121.0),
            configured("convlstm", 0, 118.0, "matched", match=match),
            configured("modernn", 0, 110.0, "matched", match={**match, "width": 8})]
    acc = frame_of(tmp_path, rows)
    assert "convlstm (matched to 0.37M params)" in acc.index and "convlstm" in acc.index
    assert acc.loc["convlstm", "seeds"] == 2 and acc.loc["convlstm", "mse"] == 120.5
    assert acc.loc["convlstm (matched to 0.37M params)", "mse"] == 118.0
    assert (acc.loc["convlstm (matched to 0.37M params)", "compared_with"]
            == "modernn (matched to 0.37M params)")
    assert acc.loc["convlstm", "compared_with"] == ""  # no unmatched modernn: nothing to pair
    write_report(tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "## Size-matched models" in readme and "Not compared" in readme


def test_cpu_and_gpu_records_of_a_model_are_two_rows(tmp_path):
    rows = [configured("modernn", 0, 100.0), configured("modernn", 0, 90.0,
                                                        device="cuda:NVIDIA H200")]
    acc = frame_of(tmp_path, rows)
    assert list(acc.index) == ["modernn (cpu:Test CPU)", "modernn (cuda:H200)"]
    assert acc["seeds"].tolist() == [1, 1] and acc["mse"].tolist() == [100.0, 90.0]


def test_two_precisions_of_a_model_are_two_rows(tmp_path):
    rows = [configured("modernn", s, 100.0 + s) for s in (0, 1)]
    rows += [configured("modernn", s, 50.0 + s, precision="bf16") for s in (0, 1)]
    acc = frame_of(tmp_path, rows)
    assert acc.loc["modernn (fp32)", "mse"] == 100.5 and acc.loc["modernn (bf16)", "mse"] == 50.5
    # rows of one model apart from the model's own settings get the hash to tell them apart
    labels = [c.label for c in configurations(
        [configured("modernn", 0, 1.0, "a"), configured("modernn", 0, 1.0, "b")])]
    assert labels == ["modernn (config modernn-a)", "modernn (config modernn-b)"]


def test_a_failure_after_a_success_keeps_the_success_and_says_so(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(configured("modernn", 0, 20.0))
    store.append(configured("modernn", 0, 0.0, status="failed", error="RuntimeError: later"))
    latest = store.latest()
    assert [r["status"] for r in latest] == ["ok"]
    assert latest[0]["later_failures"] == ["RuntimeError: later"]
    assert store.done(("train", "modernn", "toy", "quick", 0, "modernn-epochs", "cpu:Test CPU",
                       "none"))["metrics"] == latest[0]["metrics"]
    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "| modernn " in summary and "failed, 0" not in summary
    assert "Failed after a success" in summary and "seed 0: RuntimeError: later" in summary


def test_a_nan_metric_is_shown_as_nan_and_the_report_completes(tmp_path):
    rows = [configured("modernn", 0, 20.0), configured("convlstm", 0, 30.0),
            configured("convlstm", 1, 31.0)]
    rows[2]["metrics"]["headline"]["mse"] = float("nan")
    rows[2]["metrics"]["per_frame"]["mse"] = [float("nan")] * 2
    rows[2]["metrics"]["per_clip"]["mse"][3] = float("nan")
    rows += [budgeted("modernn", 0, 20.0), budgeted("convlstm", 0, 30.0)]
    rows[-1]["metrics"]["headline"]["mse"] = float("inf")
    # a NaN is valid for json.loads: written as Python writes it, around the store's checks
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    line = next(text for text in summary.splitlines() if text.startswith("| convlstm"))
    assert re.search(r"\|\s+nan\s+\|", line.lower()) and "failed" not in line  # tabulate: nan
    assert "not a finite number" in summary
    for plot in ("per_frame", "pareto", "accuracy_vs_compute"):
        assert (tmp_path / f"{plot}.png").exists(), plot
    assert re.search(r"\| convlstm \(budget steps=10\)\s+\|\s+inf\s+\|", summary)


def test_a_report_that_fails_half_way_leaves_the_previous_one(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    store.append(configured("modernn", 0, 20.0))
    write_report(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    store.append(configured("convlstm", 0, 30.0))

    def boom(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(plots, "cost_bars", boom)
    with pytest.raises(RuntimeError, match="plot failed"):
        write_report(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != "records.jsonl"} == \
        {k: v for k, v in before.items() if k != "records.jsonl"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.")]


def test_a_report_removes_the_staging_folder_a_killed_report_left(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f".report.{socket.gethostname()}-{dead.pid}.abc123.tmp"  # kill -9 mid-way
    working = tmp_path / f".report.{socket.gethostname()}-{os.getpid()}.def456.tmp"  # at work
    for staging in (left, working):
        (staging / "examples").mkdir(parents=True)
        (staging / "summary.md").write_text("half")
    ResultsStore(tmp_path).append(configured("modernn", 0, 20.0))
    write_report(tmp_path)
    assert not left.exists() and working.exists()


def test_training_throughput_is_the_training_runs_own_and_a_disagreement_is_flagged(tmp_path):
    row = configured("convlstm", 0, 30.0)  # profile: 5 seq/s (record's cost), batch 2
    row["train"].update(iteration_s=0.1, iteration_s_quartiles=[0.08, 0.125])
    quiet = configured("modernn", 0, 20.0)
    quiet["train"].update(iteration_s=0.4, iteration_s_quartiles=[0.4, 0.4])
    untimed = configured("predrnn", 0, 25.0)  # no iteration timed: the profile's figure
    cost = cost_frame([row, quiet, untimed]).set_index("model")
    assert cost.loc["convlstm", "train_seq_s"] == pytest.approx(20.0)  # 2 / 0.1
    assert cost.loc["convlstm", ["train_seq_s_q1", "train_seq_s_q3"]].tolist() == \
        pytest.approx([16.0, 25.0])
    assert cost.loc["convlstm", "profile_train_seq_s"] == 5.0
    assert cost.loc["convlstm", "rate_ratio"] == pytest.approx(4.0)
    assert cost.loc["modernn", "train_from"] == "training"
    assert cost.loc["predrnn", ["train_from", "train_seq_s"]].tolist() == ["profile", 5.0]
    store = ResultsStore(tmp_path)
    for r in (row, quiet, untimed):
        store.append(r)
    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "WARNING: convlstm: the profile measured 5 seq/s, its training run 20 seq/s" in summary
    assert "WARNING: modernn" not in summary  # 5 against 2 / 0.4 = 5: they agree
    assert "For predrnn no training iteration was timed" in summary
    line = next(text for text in summary.splitlines() if text.startswith("| convlstm") and "**20**" in text)
    assert line


def test_a_profile_only_table_labels_its_training_throughput():
    from test_report import profile_record

    from bench.report.sections import profiled_table as _profiled
    from bench.report.tables import cost_table
    table = _profiled(cost_table(cost_frame([profile_record("modernn"),
                                             profile_record("convlstm")])))
    assert "train (seq/s, profile)" in table.columns


def test_iteration_quartiles_of_the_loop():
    chunks = TimingChunks()
    assert chunks.quartiles() is None
    chunks.times = [0.1]
    assert chunks.quartiles() == [0.1, 0.1]
    chunks.times = [0.1, 0.2, 0.3, 0.4, 0.5]
    assert chunks.quartiles() == pytest.approx([0.2, 0.4])


def test_per_frame_differences_are_drawn_within_the_reference_protocol():
    import pandas as pd

    acc = pd.DataFrame({"model": ["modernn", "convlstm", "modernn (budget steps=10)",
                                  "convlstm (budget steps=10)", "predrnn (budget steps=10)"],
                        "compared_with": ["", "modernn", "", "modernn (budget steps=10)",
                                          "modernn (budget steps=10)"]})
    label, compared = plots.compared_rows(acc, "modernn")
    assert label == "modernn (budget steps=10)"  # the protocol most rows are compared in
    assert compared == {"convlstm (budget steps=10)", "predrnn (budget steps=10)"}
    per_frame = pd.DataFrame([{"model": m, "seed": 0, "frame": t, "mse": 10.0 * i + t}
                              for i, m in enumerate(acc["model"]) for t in (1, 2)])
    differences = plots.frame_differences(per_frame, label, "mse", set(), compared)
    assert set(differences["model"]) == compared  # convlstm of the epoch protocol: not paired
    assert list(differences.loc[differences["model"] == "predrnn (budget steps=10)", "delta"]) \
        == [20.0, 20.0]
    assert plots.compared_rows(acc.drop(columns="compared_with"), "modernn") == ("modernn", None)
