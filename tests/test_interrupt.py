"""Ctrl-C: one line saying where the run stopped, exit code 130, nothing recorded as failed,
and the same command resumes mid-epoch; SIGTERM likewise, with exit code 143 (its run in the
training loop, in one process and under torchrun: tests/test_distributed.py)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.store import ResultsStore
from bench.train.signals import StopOnSignal, Terminated, exit_code, sigterm_as_ctrl_c

ROOT = Path(__file__).resolve().parents[1]
FAST = ROOT / "tests" / "_fast_run_bench.py"  # run_bench.py with cost profiling stubbed out


def test_ctrl_c_checkpoints_says_where_and_the_same_command_resumes(tmp_path):
    command = [sys.executable, str(FAST), "--preset", "smoke", "--models", "convlstm",
               "--epochs", "1", "--steps", "40", "--set", "checkpoint_every_steps=5",
               "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
               "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    held = {**env, "BENCH_TEST_HOLD_AFTER": "1"}  # waits after its first checkpoint for Ctrl-C
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=held, cwd=ROOT)
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
    assert 5 <= stopped_at < 40
    assert ResultsStore(store).records() == []  # nothing recorded, in particular no failure

    again = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"resuming convlstm seed 0 from epoch 1, iteration {stopped_at} " in again.stdout
    [record] = ResultsStore(store).records()
    assert record["status"] == "ok"
    assert record["train"]["resumed_from_step"] == stopped_at and record["train"]["parts"] == 2
    assert record["wall_s"] >= record["train"]["wall_s"] > record["train"]["earlier_parts_s"] > 0


def test_sigterm_outside_training_ends_the_run_in_one_line_with_exit_143(monkeypatch, tmp_path,
                                                                         capsys):
    """Before (or after) the training loop, SIGTERM stops the run as Ctrl-C does there: one
    line, exit status 128 + 15, the handler before the run put back afterwards."""
    def run_grid_until_sigterm(request, data=None):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises Terminated long before this ends
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr("bench.cli.run.check_models_fit", lambda request: None)
    monkeypatch.setattr("bench.cli.run.run_grid", run_grid_until_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["--preset", "smoke", "--models", "persistence", "--out", str(tmp_path)]) == 143
    [message] = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert message.startswith("interrupted by SIGTERM before training began; nothing was recorded")
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_sigterm_in_training_acts_at_once():
    """The first SIGTERM asks the loop to stop at the iteration's end; a second one raises
    Terminated at once (as a second Ctrl-C raises KeyboardInterrupt)."""
    with sigterm_as_ctrl_c(), StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert stop.signum == signal.SIGTERM and stop.by == "SIGTERM"
        with pytest.raises(Terminated) as again:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert exit_code(again.value) == 143 and exit_code(KeyboardInterrupt()) == 130
