"""Data-parallel training under torchrun (2 real processes, gloo, CPU): N ranks reproduce one
process, rank 0 alone writes, and a crashed run resumes."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from bench.cli.main import main
from bench.runtime import distributed
from bench.train.loop import Trainer
from tests.test_standard_datasets import root  # noqa: F401  (the real-layout files fixture)

ROOT = Path(__file__).resolve().parents[1]
FAST = ROOT / "tests" / "_fast_run_bench.py"
SMOKE = "mmnist-embedded-32px/smoke"
# Global batch 4 (2 clips per rank); a mid-epoch checkpoint after every iteration.
ARGS = ["--preset", "smoke", "--models", "convlstm", "persistence", "--batch-size", "4",
        "--epochs", "2", "--steps", "3", "--set", "checkpoint_every_steps=1", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(out: Path, cache: Path, *extra, crash_after: int = 0,
                     **env_vars: str) -> tuple[list[str], dict]:
    """The command line and environment of a 2-rank torchrun of FAST on ARGS (and ``extra``)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCH_TEST_CRASH_AFTER": str(crash_after),
           "BENCH_TEST_NO_REPORT": "1", "BENCH_TEST_GRAD_NORMS": str(out / "grad_norms.json"),
           **env_vars}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               f"--master_port={_free_port()}", str(FAST), *ARGS, *extra,
               "--out", str(out), "--cache-dir", str(cache)]
    return command, env


def torchrun(out: Path, cache: Path, *extra, crash_after: int = 0,
             **env_vars: str) -> subprocess.CompletedProcess:
    command, env = torchrun_command(out, cache, *extra, crash_after=crash_after, **env_vars)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def records(out: Path) -> list[dict]:
    path = out / SMOKE / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def final_weights(out: Path) -> dict:
    (path,) = (out / SMOKE / "checkpoints").glob("convlstm__*/last.pt")
    return torch.load(path, weights_only=True)["model"]


def assert_same_weights(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()  # no "module." prefix: checkpoints work for 1 and N processes
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: the same grid in one process (this one), stubbed as FAST is."""
    out = tmp_path_factory.mktemp("one")
    step, norms = Trainer.training_step, []

    def step_and_record(self, *args, **kwargs):  # as FAST's BENCH_TEST_GRAD_NORMS
        loss = step(self, *args, **kwargs)
        norms.append(sum(p.grad.square().sum() for p in self.model.parameters()).sqrt().item())
        return loss

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "training_step", step_and_record)
        patch.setattr("bench.grid.costs.profile_model", lambda model, *a, **k: {
            "params": sum(p.numel() for p in model.parameters())})
        patch.setattr("bench.report.write_report",
                      lambda folder, **options: (Path(folder) / "summary.md").write_text(""))
        assert main([*ARGS, "--out", str(out), "--cache-dir", str(out / "cache")]) == 0
    (out / "grad_norms.json").write_text(json.dumps(norms))
    return out


def test_two_processes_train_and_evaluate_like_one(one_process, tmp_path):
    run = torchrun(tmp_path / "two", tmp_path / "cache")
    assert run.returncode == 0, run.stderr[-3000:]
    two = {r["model"]: r for r in records(tmp_path / "two")}
    one = {r["model"]: r for r in records(one_process)}
    # rank 0 alone appends: one record per cell, saying how it was run
    assert len(records(tmp_path / "two")) == 2 and set(two) == {"convlstm", "persistence"}
    assert two["convlstm"]["distributed"] == {"world_size": 2, "per_rank_batch": 2,
                                              "backend": "gloo"}
    assert one["convlstm"]["distributed"]["world_size"] == 1
    assert two["convlstm"]["config_hash"] == one["convlstm"]["config_hash"]
    # the global batch sliced over ranks and the summed loss scaled by the world size: one
    # process's gradients (Adam would hide a wrong scale in the weights)
    norms = [json.loads((out / "grad_norms.json").read_text()) for out in (one_process, tmp_path / "two")]
    assert len(norms[0]) == 2 * 3 and norms[1] == pytest.approx(norms[0], rel=1e-5)
    diff = assert_same_weights(final_weights(one_process), final_weights(tmp_path / "two"))
    print(f"max |weight difference| 1 vs 2 processes: {diff:.3g}")
    for name in ("convlstm", "persistence"):  # sharded test set, all-reduced metrics
        for metric, values in one[name]["metrics"]["per_frame"].items():
            assert two[name]["metrics"]["per_frame"][metric] == pytest.approx(values, rel=1e-5)
        for metric, values in one[name]["metrics"]["per_clip"].items():  # gathered in clip order
            assert two[name]["metrics"]["per_clip"][metric] == pytest.approx(values, rel=1e-5)
    for a, b in zip(one["convlstm"]["train"]["history"], two["convlstm"]["train"]["history"],
                    strict=True):
        assert b == pytest.approx(a, rel=1e-5)
    assert (tmp_path / "two" / SMOKE / "examples" / "convlstm__seed0.npz").is_file()


def test_a_crashed_run_relaunched_resumes_like_an_uninterrupted_one(one_process, tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    crashed = torchrun(out, cache, "--models", "convlstm", crash_after=3)  # at epoch 2, iteration 1
    assert crashed.returncode != 0 and records(out) == []
    resumed = torchrun(out, cache, "--models", "convlstm")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (record,) = records(out)
    assert record["train"]["resumed_from_step"] == 4
    assert_same_weights(final_weights(one_process), final_weights(out))
    reference = next(r for r in records(one_process) if r["model"] == "convlstm")
    one, two = reference["train"]["history"], record["train"]["history"]
    assert [h["val_mse"] for h in two] == pytest.approx([h["val_mse"] for h in one], rel=1e-5)
    # (the resumed epoch's train_loss mixes in rank 0's own losses from before the crash: a
    # checkpoint holds no collective, so it carries rank 0's, not the mean over ranks)
    assert two[0]["train_loss"] == pytest.approx(one[0]["train_loss"], rel=1e-5)


def one_process_run(out: Path, cache: Path, *extra, **env_vars: str) -> subprocess.CompletedProcess:
    """FAST on ARGS (and ``extra``) in one process, as :func:`torchrun` runs it in two."""
    command, env = torchrun_command(out, cache, *extra, **env_vars)
    command = [sys.executable, *command[command.index(str(FAST)):]]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ranks", [1, 2])
def test_sigterm_stops_every_rank_at_one_iteration_with_a_checkpoint_and_the_rerun_resumes(
        one_process, tmp_path, ranks):
    """SIGTERM (torchrun's and SLURM's stop) is handled like Ctrl-C: the loop ends the iteration,
    checkpoints, says so in one line and exits 143. torchrun and SLURM may signal one worker or
    all: here the last rank alone gets it (after its 3rd checkpoint, epoch 2 iteration 1), yet
    every rank stops at that iteration's end and rank 0 checkpoints it. The same command then
    resumes and ends with one uninterrupted process's weights."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    launch = torchrun if ranks == 2 else one_process_run
    stopped = launch(out, cache, "--models", "convlstm",
                     BENCH_TEST_SIGNAL_AFTER=f"3:{ranks - 1}:SIGTERM")
    assert records(out) == []
    line = "interrupted: convlstm seed 0 stopped by SIGTERM at epoch 2, iteration 2 of 3; checkpoint"
    if ranks == 1:
        assert stopped.returncode == 143, stopped.stderr[-3000:]  # 128 + SIGTERM
        [message] = [text for text in stopped.stderr.splitlines() if text.strip()]
        assert message.startswith(line) and message.endswith("Run the same command to resume")
    else:
        assert stopped.stderr.count(line) == 2, stopped.stderr[-3000:]  # rank 0's and rank 1's
        assert stopped.returncode != 0 and "exitcode  : 143" in stopped.stderr
    resumed = launch(out, cache, "--models", "convlstm")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (record,) = records(out)
    assert record["train"]["resumed_from_step"] == 5 and record["train"]["parts"] == 2
    assert_same_weights(final_weights(one_process), final_weights(out))


def _stopped_child(parent: int) -> int | None:
    """The pid of a child of ``parent`` in the stopped state (SIGSTOP), if any."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return next((int(pid) for pid in children
                 if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"), None)


def test_a_stalled_rank_stops_the_run_within_the_timeout_naming_it(tmp_path):
    """Rank 1 stops itself (SIGSTOP) after its 2nd checkpoint: within the 5 s collective
    timeout (+ a 5 s grace for the ranks to check in) rank 0 says which rank stalled, records
    nothing, keeps its last checkpoint (whose time excludes the stall) and exits 75."""
    out = tmp_path / "run"
    command, env = torchrun_command(out, tmp_path / "cache", "--models", "convlstm",
                                    "--epochs", "1", "--steps", "40", PYTHONUNBUFFERED="1",
                                    BENCH_TEST_SIGNAL_AFTER="2:1:SIGSTOP",
                                    STBENCH_COLLECTIVE_TIMEOUT="5")
    err_path = tmp_path / "stderr.txt"
    launched = time.monotonic()
    with err_path.open("w") as err:
        run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        while (stalled := _stopped_child(run.pid)) is None:
            assert run.poll() is None and time.monotonic() < launched + 90, err_path.read_text()
            time.sleep(0.05)
        stalled_at = time.monotonic()
        while "error: rank 0:" not in err_path.read_text():
            assert time.monotonic() < stalled_at + 30, err_path.read_text()[-3000:]
            time.sleep(0.1)
        took = time.monotonic() - stalled_at
    finally:
        os.kill(stalled, signal.SIGCONT) if stalled else None  # torchrun then ends it at once
        run.wait(timeout=60)
    text = err_path.read_text()
    [message] = [line for line in text.splitlines() if line.startswith("error: rank 0:")]
    assert message.startswith("error: rank 0: a collective of convlstm seed 0 in training "
                              "iteration 3 got no answer from rank 1 within the 5 s collective "
                              "timeout (STBENCH_COLLECTIVE_TIMEOUT)"), message
    assert message.endswith("last.pt"), message
    assert 5 <= took < 20 and run.returncode != 0 and "exitcode  : 75" in text
    assert records(out) == []  # a stalled rank is no model's failure
    (last,) = (out / SMOKE / "checkpoints").glob("convlstm__*/last.pt")
    state = torch.load(last, weights_only=True)
    assert state["batch"] == 2 and state["elapsed_s"] < stalled_at - launched


def test_a_bad_collective_timeout_is_refused_naming_it(monkeypatch):
    for bad in ("soon", "0", "-1", "inf", "nan"):
        monkeypatch.setenv(distributed.TIMEOUT_ENV, bad)
        with pytest.raises(ValueError, match=f"STBENCH_COLLECTIVE_TIMEOUT='{bad}' is not a "
                           "timeout; accepted: a number of seconds above 0"):
            distributed.collective_timeout()
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "2.5")
    assert distributed.collective_timeout().total_seconds() == 2.5
    monkeypatch.delenv(distributed.TIMEOUT_ENV)
    assert distributed.collective_timeout().total_seconds() == 600


def test_a_flop_budget_under_torchrun_spends_what_one_process_does(tmp_path):
    """N ranks plan the budget from rank 0's measured cost at the global batch: the iterations
    (5, past an epoch's end) and, within float noise, the results of one process."""
    budget = 800_000
    extra = ["--models", "convlstm", "--budget", f"flops={budget}"]
    one = tmp_path / "one"
    with pytest.MonkeyPatch.context() as patch:  # stubbed as FAST is with BENCH_TEST_TRAIN_FLOPS
        patch.setattr("bench.grid.costs.profile_model", lambda model, *a, **k: {
            "params": sum(p.numel() for p in model.parameters()),
            "train_flops_per_seq": 2.0 * sum(p.numel() for p in model.parameters())})
        patch.setattr("bench.report.write_report",
                      lambda folder, **options: (Path(folder) / "summary.md").write_text(""))
        assert main([*ARGS, *extra, "--out", str(one), "--cache-dir", str(one / "cache")]) == 0
    run = torchrun(tmp_path / "two", tmp_path / "cache", *extra, BENCH_TEST_TRAIN_FLOPS="1")
    assert run.returncode == 0, run.stderr[-3000:]
    (a,), (b,) = records(one), records(tmp_path / "two")
    assert b["distributed"]["world_size"] == 2 and b["config_hash"] == a["config_hash"]
    spent_a, spent_b = a["train"]["budget"], b["train"]["budget"]
    per_iteration = spent_a["flops_per_iteration"]
    assert per_iteration == 2.0 * a["cost"]["params"] * 4  # the global batch
    assert spent_b["spent_iterations"] == spent_a["spent_iterations"] == budget // per_iteration == 5
    assert spent_b["spent_flops"] == spent_a["spent_flops"] <= budget
    for metric, values in a["metrics"]["per_frame"].items():
        assert b["metrics"]["per_frame"][metric] == pytest.approx(values, rel=1e-5)

    def timeless(history):
        return [{k: v for k, v in h.items() if k != "train_s"} for h in history]

    for x, y in zip(timeless(a["train"]["history"]), timeless(b["train"]["history"]), strict=True):
        assert y == pytest.approx(x, rel=1e-5)
    assert b["train"]["history"][-1]["fraction"] == 1.0


# ------------------------------------------------------------------ helpers, without a group
@pytest.fixture
def two_ranks(monkeypatch):
    def as_rank(r):
        monkeypatch.setattr(distributed, "is_distributed", lambda: True)
        monkeypatch.setattr(distributed, "world_size", lambda: 2)
        monkeypatch.setattr(distributed, "rank", lambda: r)
    return as_rank


def test_the_global_batch_must_split_evenly(two_ranks):
    two_ranks(0)
    with pytest.raises(ValueError, match="batch size 5 does not split evenly over 2 processes"):
        distributed.check_batch(5)


def test_rank_rows_are_disjoint_slices_covering_the_batch(two_ranks):
    batch = torch.arange(8).reshape(4, 2)
    parts = []
    for r in (0, 1):
        two_ranks(r)
        parts.append(distributed.rank_rows(batch))
    assert torch.equal(torch.cat(parts), batch)


@pytest.mark.parametrize("n", [0, 1, 5, 8])
def test_eval_shards_partition_the_clips_in_order(two_ranks, n):
    clips = list(range(n))
    shards = []
    for r in (0, 1):
        two_ranks(r)
        shards.append(list(distributed.shard(clips)))
    assert shards[0] + shards[1] == clips and abs(len(shards[0]) - len(shards[1])) <= 1
    assert shards[0] or not clips  # rank 0 keeps the example clips: its part is never empty


def test_one_process_is_untouched():
    assert not distributed.launched() or os.environ.get("WORLD_SIZE") == "1"
    assert distributed.world_size() == 1 and distributed.is_main()
    assert distributed.loss_scale("mse+l1") == 1
    assert distributed.wrap(torch.nn.Linear(2, 2), torch.device("cpu")).__class__ is torch.nn.Linear


def one_test_window(folder: Path) -> list[str]:
    """An own file dataset with thresholds whose test split is one window: fewer test clips than
    ranks."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 1), ("test", 1)):
        np.save(folder / f"{split}.npy", (rng.random((n, 6, 1, 16, 16)) * 60).astype(np.float32))
    toml = folder / "radar.toml"
    toml.write_text('name = "radar"\nin_len = 4\nout_len = 2\nthresholds = [20, 35]\n'
                    '[paths]\ntrain = "train.npy"\nval = "val.npy"\ntest = "test.npy"\n'
                    '[normalize]\nmode = "range"\nrange = [0, 60]\n')
    return ["--dataset-config", str(toml)]


@pytest.mark.parametrize("dataset, key, clips", [("sevir-128", "skill", 2),
                                                 ("weatherbench", "latitude_weighted", 2),
                                                 (one_test_window, "skill", 1)])
def test_the_fields_scores_under_two_ranks_equal_one_process(root, tmp_path, dataset, key,  # noqa: F811
                                                             clips):
    """Each rank counts its shard of the test clips; the counts (skill) and sums (latitude
    weighting) are all-reduced, so two ranks record what one process does, also when one rank
    has no test clip."""
    data = dataset(tmp_path) if callable(dataset) else ["--dataset", dataset, "--data-root",
                                                        str(root)]
    runs = {n: launch(tmp_path / str(n), tmp_path / "cache", "--models", "persistence", *data)
            for n, launch in ((1, one_process_run), (2, torchrun))}
    found = {}
    for n, run in runs.items():
        assert run.returncode == 0, run.stderr[-3000:]
        (path,) = (tmp_path / str(n)).rglob("records.jsonl")
        (record,) = [json.loads(line) for line in path.read_text().splitlines()]
        found[n] = record
    assert found[2]["distributed"]["world_size"] == 2
    one, two = found[1]["metrics"][key], found[2]["metrics"][key]
    if key == "skill":  # integer counts: exactly the same
        assert two["counts"] == one["counts"] and two["headline"] == one["headline"]
    else:  # float32 sums, added in another order: equal to round-off of the terms' magnitude
        sums = {name: np.array(values) for name, values in one["sums"].items()}
        # |sum f't'| <= sqrt(sum f'^2 sum t'^2): the anomaly product may cancel to near 0
        bound = np.sqrt(sums["forecast_anomaly_sq"] * sums["target_anomaly_sq"])
        for name, values in sums.items():
            scale = bound if name == "anomaly_product" else np.abs(values)
            assert np.all(np.abs(np.array(two["sums"][name]) - values) <= 1e-5 * scale), name
        assert two["headline"] == pytest.approx(one["headline"], rel=1e-5, abs=1e-6)
    assert len(found[2]["metrics"]["per_clip"]["mse"]) >= clips


def test_a_rank_without_test_clips_still_gives_its_field_scores_zero_counts(two_ranks):
    """More ranks than test clips: the rank with none updates its scorers with an empty batch,
    so it takes part in their all-reduce with zeros instead of failing (or hanging the other)."""
    from bench.evaluation.gridded import LatitudeWeighted
    from bench.evaluation.loop import evaluate
    from bench.evaluation.skill import ThresholdCounts

    clips = [torch.rand(4, 1, 8, 8)]  # one clip of 2 input and 2 predicted frames
    persistence = models.create_model("persistence")
    counted = []
    for r in (0, 1):
        two_ranks(r)
        scorers = {"skill": ThresholdCounts([0.5], [1.0], [0.0], "unit", "test"),
                   "latitude_weighted": LatitudeWeighted([-45.0] * 4 + [45.0] * 4,
                                                         torch.zeros(1, 8, 8), [1.0], [0.0], "K",
                                                         "zero", "test")}
        result = evaluate(persistence, clips, 2, 2, torch.device("cpu"), scorers=scorers)
        counts = result["skill"]["counts"]["1"]
        pixels = sum(sum(row) for name in counts for row in counts[name])  # 2 frames of 64
        counted.append((pixels, result["latitude_weighted"]["sums"]["forecasts"]))
    assert sorted(counted) == [(0, [0, 0]), (128, [1, 1])]
