"""Resume after SIGKILL, failure isolation, bad input, concurrent store writers, sharding,
safe names."""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_validation import MINIMAL_RECORD

from bench.cli.main import main
from bench.grid.shards import parse_shard, shard_cells
from bench.store import ResultsStore
from datasets import safe_component
from models import Prediction

ROOT = Path(__file__).resolve().parents[1]
FAST = ROOT / "tests" / "_fast_run_bench.py"
SMOKE = "mmnist-embedded-32px/smoke"


# ------------------------------------------------------------------------- resume after kill -9
def _command(out: Path, cache: Path) -> list[str]:
    return [sys.executable, str(FAST), "--preset", "smoke", "--models", "convlstm",
            "--epochs", "2", "--steps", "16", "--set", "checkpoint_every_steps=3",
            "--set", "sampling_steps=1000",
            "--out", str(out), "--cache-dir", str(cache), "--no-progress"]


def test_kill_9_mid_training_then_resume_matches_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "env": env, "cwd": ROOT}
    reference = subprocess.Popen(_command(tmp_path / "ref", tmp_path / "c1"), **quiet)
    victim_cmd = _command(tmp_path / "run", tmp_path / "c2")
    held = {**env, "BENCH_TEST_HOLD_AFTER": "1"}  # waits after its first checkpoint
    victim = subprocess.Popen(victim_cmd, **{**quiet, "env": held})
    checkpoints = tmp_path / "run" / SMOKE / "checkpoints"
    deadline = time.monotonic() + 120
    while not list(checkpoints.glob("*/last.pt")):
        assert victim.poll() is None, victim.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "run" / SMOKE / "records.jsonl").exists()  # killed mid-training
    state = torch.load(next(checkpoints.glob("*/last.pt")), weights_only=True)
    assert (state["epoch"], state["batch"]) < (2, 0)

    resumed = subprocess.run(victim_cmd, capture_output=True, env=env, cwd=ROOT, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()
    [ref] = ResultsStore(tmp_path / "ref" / SMOKE).records()
    [got] = ResultsStore(tmp_path / "run" / SMOKE).records()
    assert got["train"]["resumed_from_step"] is not None
    assert ref["train"]["resumed_from_step"] is None
    assert got["metrics"] == ref["metrics"]  # exactly equal on CPU
    assert got["train"]["history"] == ref["train"]["history"]
    # the checkpoint folder belongs to this configuration
    [folder] = [p.name for p in checkpoints.iterdir()]
    assert folder == f"convlstm__seed0__{got['config_hash']}"


# ------------------------------------------------------------------------- failure isolation
class NaNModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, frames, in_len, out_len, truth_mask=None):
        return Prediction(frames[:, in_len:in_len + out_len] * self.w * float("nan"))


@pytest.fixture
def nan_model(temporary_model):
    return temporary_model("zz_nan", NaNModel)


def test_a_nan_model_is_recorded_with_its_step_and_the_others_go_on(run, tmp_path, nan_model):
    assert run("--models", nan_model, "persistence") == 1
    records = {r["model"]: r for r in ResultsStore(tmp_path / "results" / SMOKE).records()}
    assert records[nan_model]["status"] == "failed"
    assert "DivergedError: non-finite training loss" in records[nan_model]["error"]
    assert records[nan_model]["failed_step"] == 0
    assert records["persistence"]["status"] == "ok"


# ------------------------------------------------------------------------- bad input
def _npy_bytes(array):
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _corrupt_root(tmp_path, name, write):
    root = tmp_path / name
    root.mkdir()
    write(root / "mnist_test_seq.npy")
    return str(root)


BAD_INPUTS = {
    "unknown model": (["--models", "convlstn"], "unknown model 'convlstn'; did you mean"),
    "unknown dataset": (["--dataset", "ucf101"], "unknown dataset 'ucf101'"),
    "unknown preset": (["--preset", "fast"], "argument --preset: invalid choice: 'fast'"),
    "override without =": (["--set", "lr"], "malformed override 'lr'; expected key=value"),
    "unknown override": (["--set", "nosuchkey=1"], "unknown option 'nosuchkey'"),
    "override type": (["--set", "epochs=abc"], "--set epochs=abc: expected an integer"),
    "override choice": (["--set", "amp=fp8"], "--set amp=fp8: accepted: none, bf16, fp16"),
    "model-arg type": (["--model-arg", "hidden=x"],
                       "--model-arg hidden=x: model 'convlstm' expects an integer"),
    "unknown model-arg": (["--model-arg", "nosuch=1"], "model 'convlstm' takes no argument"),
    "patch": (["--model-arg", "patch=3"], "patch size 3 does not divide the frame size 32x32"),
    "epochs type": (["--epochs", "abc"], "argument --epochs: invalid int value: 'abc'"),
    "shard": (["--shard", "3/2"], "--shard '3/2': expected i/n with integers 1 <= i <= n"),
    "data root missing": (["--data-root", "/nonexistent/x"], "is not a folder"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_before_training(run, capsys, case):
    args, expected = BAD_INPUTS[case]
    models = [] if "--models" in args else ["--models", "convlstm"]
    assert run(*models, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("case,write,expected", [
    ("corrupt", lambda p: p.write_bytes(b"\x93NUMPY garbage"), "not a valid .npy array"),
    ("truncated", lambda p: p.write_bytes(_npy_bytes(np.zeros((20, 8, 64, 64), np.uint8))[:5000]),
     "mnist_test_seq.npy"),
    ("rank 3", lambda p: np.save(p, np.zeros((20, 64, 64), np.uint8)), "expected rank 4"),
    ("dtype", lambda p: np.save(p, np.zeros((20, 4, 64, 64), np.float32)), "expected uint8"),
    ("pickle", lambda p: np.save(p, np.array([{}], dtype=object), allow_pickle=True),
     "not a valid .npy array"),
])
def test_bad_data_files_are_one_line_errors(run, tmp_path, capsys, case, write, expected):
    root = _corrupt_root(tmp_path, case.replace(" ", "_"), write)
    assert run("--models", "persistence", "--data-root", root) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and err.count("\n") == 1, err


def test_output_folder_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["--preset", "smoke", "--models", "persistence", "--out", str(blocker / "sub")]) == 2
    assert "error: output folder" in capsys.readouterr().err


# ------------------------------------------------------------------------- safe names
def test_safe_component_rejects_traversal_and_separators():
    assert safe_component("predrnn_v2") == "predrnn_v2"
    for bad in ("..", "../x", "a/b", "a\\b", "", ".hidden", "x..y", "a\0b"):
        with pytest.raises(ValueError, match="cannot be used in a file name"):
            safe_component(bad)


@pytest.fixture
def evil_model(temporary_model):
    return temporary_model("../evil", NaNModel)


def test_a_model_name_never_becomes_a_path_outside_the_output(run, tmp_path, capsys, evil_model):
    assert run("--models", evil_model) == 2
    assert "error: model name '../evil' cannot be used in a file name" in capsys.readouterr().err
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*evil*"))


def test_every_load_in_the_tree_is_safe():
    for path in list(ROOT.glob("bench/**/*.py")) + list(ROOT.glob("datasets/**/*.py")):
        text = path.read_text()
        assert "allow_pickle=True" not in text, path
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line}"


# ------------------------------------------------------------------------- sharding
def test_shards_are_disjoint_and_cover_the_grid():
    names, seeds = ["predrnn", "convlstm", "modernn", "persistence", "mau"], [2, 0, 1]
    grid = shard_cells(names, seeds)
    for n in (1, 2, 4, 7, 20):
        shards = [shard_cells(names, seeds, (i, n)) for i in range(1, n + 1)]
        flat = [cell for shard in shards for cell in shard]
        assert len(flat) == len(set(flat)) == len(grid) and set(flat) == set(grid)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shard_cells(names, seeds, (1, 2)) == shard_cells(list(reversed(names)), seeds, (1, 2))
    for bad in ("0/2", "3/2", "1/0", "a/b", "2", "1/2/3"):
        with pytest.raises(ValueError, match="expected i/n"):
            parse_shard(bad)


def test_shard_runs_only_its_cells(run, tmp_path):
    assert run("--models", "persistence", "--seeds", "0", "1", "2", "--shard", "2/2") == 0
    records = ResultsStore(tmp_path / "results" / SMOKE).records()
    assert [(r["model"], r["seed"]) for r in records] == [("persistence", 1)]


# ------------------------------------------------------------------------- the store
def _writer(folder: str, tag: int, count: int) -> None:
    store = ResultsStore(folder)
    for i in range(count):
        store.append({"writer": tag, "i": i, "payload": str(tag) * (40_000 + 97 * tag)})


def test_concurrent_writers_lose_and_corrupt_nothing(tmp_path):
    count = 150
    context = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
    procs = [context.Process(target=_writer, args=(str(tmp_path), tag, count)) for tag in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    assert len(records) == 3 * count
    for tag in range(3):
        assert [r["i"] for r in records if r["writer"] == tag] == list(range(count))


def test_a_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    store = ResultsStore(tmp_path)
    store.append({**MINIMAL_RECORD, "a": 1})
    with open(store.path, "a") as handle:
        handle.write('{"a": 2, "stat')  # a crash mid-write
    with pytest.warns(UserWarning, match="skipping a damaged record"):
        assert store.records() == [{**MINIMAL_RECORD, "a": 1}]
    store.append({**MINIMAL_RECORD, "a": 3})  # the next record is not glued to the damaged one
    with pytest.warns(UserWarning, match="records.jsonl:2: skipping"):
        assert [r["a"] for r in store.records()] == [1, 3]


def test_a_truncated_store_never_crashes_the_report(run, tmp_path, capsys):
    assert run("--models", "persistence") == 0
    store = ResultsStore(tmp_path / "results" / SMOKE)
    with open(store.path, "a") as handle:
        handle.write('{"mode": "train", "model": "convl')
    with pytest.warns(UserWarning, match="skipping a damaged record"):
        assert main(["report", "--out", str(tmp_path / "results")]) == 0
