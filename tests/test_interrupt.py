"""Ctrl-C: one line saying where the run stopped, exit code 130, nothing recorded as failed,
and the same command resumes mid-epoch."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.store import ResultsStore

ROOT = Path(__file__).resolve().parents[1]
FAST = ROOT / "tests" / "_fast_run_bench.py"  # run_bench.py with cost profiling stubbed out


def test_ctrl_c_checkpoints_says_where_and_the_same_command_resumes(tmp_path):
    command = [sys.executable, str(FAST), "--preset", "smoke", "--models", "convlstm",
               "--epochs", "1", "--steps", "150", "--set", "checkpoint_every_steps=5",
               "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
               "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env, cwd=ROOT)
    store = tmp_path / "out" / "mmnist-embedded-32px" / "smoke"
    deadline = time.monotonic() + 120
    while not list(store.glob("checkpoints/*/last.pt")):  # training is under way
        assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "Traceback" not in err
    [message] = [line for line in err.splitlines() if line.strip()]
    assert message.startswith("interrupted: convlstm seed 0 stopped at epoch 1, iteration ")
    assert message.endswith("Run the same command to resume")
    stopped_at = int(message.split("iteration ")[1].split(" ")[0])
    assert 5 <= stopped_at < 150
    assert ResultsStore(store).records() == []  # nothing recorded, in particular no failure

    again = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"resuming convlstm seed 0 from epoch 1, iteration {stopped_at} " in again.stdout
    [record] = ResultsStore(store).records()
    assert record["status"] == "ok"
    assert record["train"]["resumed_from_step"] == stopped_at and record["train"]["parts"] == 2
    assert record["wall_s"] >= record["train"]["wall_s"] > record["train"]["earlier_parts_s"] > 0
