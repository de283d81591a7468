"""Concurrent runs of one grid into one folder: per-cell claims split the work, each cell is
recorded once (real processes), and a dead holder's claim is taken over."""
import collections
import os
import subprocess
import sys
from pathlib import Path

from bench.grid import claims
from bench.store import ResultsStore, cell_key

ROOT = Path(__file__).resolve().parents[1]
FAST = ROOT / "tests" / "_fast_run_bench.py"  # run_bench.py with cost profiling stubbed out


def test_three_concurrent_runs_record_each_cell_once(tmp_path):
    command = [sys.executable, str(FAST), "--preset", "smoke", "--models", "convlstm",
               "--seeds", "0", "1", "--epochs", "1", "--steps", "3",
               "--set", "checkpoint_every_steps=1", "--out", str(tmp_path / "out"),
               "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
           "BENCH_TEST_NO_REPORT": "1"}
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=ROOT) for _ in range(3)]
    outputs = [run.communicate(timeout=240) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
        assert "Traceback" not in err
    records = ResultsStore(tmp_path / "out" / "mmnist-embedded-32px" / "smoke").records()
    counts = collections.Counter((r["model"], r["seed"]) for r in records)
    assert counts == {("convlstm", 0): 1, ("convlstm", 1): 1}, counts
    assert all(r["status"] == "ok" and r["train"]["parts"] == 1 for r in records)
    assert len({cell_key(r) for r in records}) == 2
    said = "".join(out for out, _ in outputs)
    assert "is running it" in said or "recorded by another run meanwhile" in said


def test_a_claim_is_exclusive_and_released(tmp_path):
    record = {"mode": "train", "model": "convlstm", "seed": 0, "config_hash": "abc123"}
    path = claims.claim_path(tmp_path, record)
    first = claims.try_claim(path)
    assert isinstance(first, claims.Claim)
    holder = claims.try_claim(path)  # a second open file: flock conflicts within a process too
    assert holder.startswith(f"pid {os.getpid()} on ")
    first.release()
    again = claims.try_claim(path)
    assert isinstance(again, claims.Claim)
    again.release()


def test_a_dead_holders_claim_is_taken_over(tmp_path):
    record = {"mode": "train", "model": "convlstm", "seed": 0, "config_hash": "abc123"}
    path = claims.claim_path(tmp_path, record)
    holder = ("import os, sys; sys.path.insert(0, sys.argv[1]); from bench import claims; "
              "from pathlib import Path; claims.try_claim(Path(sys.argv[2])); os._exit(9)")
    subprocess.run([sys.executable, "-c", holder, str(ROOT), str(path)], check=False)
    claim = claims.try_claim(path)  # the kernel dropped the dead process's lock
    assert isinstance(claim, claims.Claim)
    claim.release()
