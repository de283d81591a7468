"""The cluster launcher (``--launcher slurm|local``, bench.launch, bench.cli.launch).

The local launcher is exercised for real: submitit starts each job as a subprocess, the jobs
write to one store, and the parent writes the report; a job stopped mid-training and submitted
again resumes from its checkpoint. SLURM is tested up to the sbatch script it would submit.
"""
import json
import signal
import time
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit")

from bench.cli import launch  # noqa: E402
from bench.cli.main import main  # noqa: E402
from bench.launch.executors import LaunchOptions, make_executor, submit  # noqa: E402
from bench.launch.jobs import GridJob, JobFailed  # noqa: E402

TESTS = Path(__file__).resolve().parent
FAST = "_fast_run_bench:main"  # the CLI with cost profiling stubbed (tests/_fast_run_bench.py)


def grid_args(tmp_path, *more):
    return ["--preset", "smoke", "--out", str(tmp_path / "results"), "--cache-dir",
            str(tmp_path / "cache"), "--device", "cpu", *more]


def records(tmp_path) -> list[dict]:
    paths = list((tmp_path / "results").rglob("records.jsonl"))
    return [json.loads(line) for p in paths for line in p.read_text().splitlines()]


# ------------------------------------------------------------------- options and the script
def test_job_argv_drops_the_launcher_options_and_adds_the_shard():
    flags = launch.launch_flags(launch.run.build_parser())
    argv = ["--models", "convlstm", "--launcher", "slurm", "--jobs=2", "--dry-run",
            "--slurm-option", "account=x", "--preset", "smoke", "--no-progress"]
    assert launch.job_argv(argv, flags, "2/2") == [
        "--models", "convlstm", "--preset", "smoke", "--no-progress", "--shard", "2/2"]
    assert launch.job_argv(["--models", "a"], flags, "1/1")[-1] == "--no-progress"


@pytest.mark.parametrize("text, minutes", [("90", 90), ("24:00:00", 1440), ("1:30", 90),
                                           ("0:10:30", 11), ("2-00:00:00", 2880)])
def test_time_limit(text, minutes):
    assert launch.time_minutes(text) == minutes


@pytest.mark.parametrize("text", ["1h", "0", "2-5", ":30"])
def test_bad_time_limit_is_one_clear_error(text):
    with pytest.raises(ValueError, match="expected minutes|at least one minute"):
        launch.time_minutes(text)


def test_slurm_dry_run_prints_the_sbatch_script_of_the_array(tmp_path, capsys):
    code = main(["--launcher", "slurm", "--dry-run", "--models", "convlstm", "persistence",
                 *grid_args(tmp_path), "--slurm-partition", "gpu", "--gpus-per-job", "2",
                 "--cpus-per-job", "8", "--time-limit", "1:30:00", "--slurm-option",
                 "account=proj", "--job-setup", "source .venv/bin/activate"])
    out = capsys.readouterr().out
    assert code == 0, out
    for line in ("#SBATCH --array=0-1%2", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --ntasks-per-node=2", "#SBATCH --cpus-per-task=8", "#SBATCH --time=90",
                 "#SBATCH --signal=USR2@120", "#SBATCH --requeue", "#SBATCH --account=proj",
                 "source .venv/bin/activate", "-m submitit.core._submit"):
        assert line in out, line
    jobs = [line for line in out.splitlines() if line.startswith("  job ")]
    assert len(jobs) == 2 and "--shard 1/2" in jobs[0] and "--shard 2/2" in jobs[1]
    assert "--launcher" not in "".join(jobs) and not (tmp_path / "results").exists()


@pytest.mark.parametrize("extra, message", [
    (["--jobs", "3"], "--jobs 3: the grid has 2"),
    (["--shard", "1/2"], "--shard is not for --launcher"),
    (["--time-limit", "soon"], "--time-limit 'soon'"),
    (["--slurm-option", "account"], "--slurm-option 'account': expected KEY=VALUE"),
    (["--gpus-per-job", "-1"], "--gpus-per-job must be >= 0"),
])
def test_bad_launcher_options_are_one_clear_error(tmp_path, capsys, extra, message):
    code = main(["--launcher", "slurm", "--dry-run", "--models", "convlstm", "persistence",
                 *grid_args(tmp_path), *extra])
    assert code == 2 and message in capsys.readouterr().err


def test_slurm_without_a_cluster_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun, no sbatch
    assert main(["--launcher", "slurm", "--models", "convlstm", *grid_args(tmp_path)]) == 2
    assert 'Could not detect "srun"' in capsys.readouterr().err


def test_launcher_options_must_be_written_in_full(tmp_path, capsys):
    assert main(["--launcher", "slurm", "--dry-run", "--models", "convlstm",
                 *grid_args(tmp_path), "--slurm-part", "gpu"]) == 2
    assert "unrecognized arguments: --slurm-part" in capsys.readouterr().err


def test_a_failed_job_is_named_with_its_log(tmp_path, capsys, monkeypatch):
    class Failed:
        job_id = "123"
        paths = type("Paths", (), {"stderr": tmp_path / "123_0_log.err"})()

        def result(self):
            raise submitit.core.utils.FailedJobError("Traceback ...\nJobFailed: exit status 1")

    monkeypatch.setattr(launch.report, "main", lambda argv: 0)
    assert launch.wait_and_report([Failed()], str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "job 1 of 1 (123): FAILED: JobFailed: exit status 1" in err and "123_0_log.err" in err


# ------------------------------------------------------------------------ the local launcher
@pytest.fixture
def job_env(monkeypatch):
    """Jobs import tests/_fast_run_bench.py (profiling stubbed) and skip their own report."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}:{Path(launch.__file__).parents[2]}")
    monkeypatch.setenv("BENCH_TEST_NO_REPORT", "1")


def local_options(tmp_path) -> LaunchOptions:
    return LaunchOptions("local", tmp_path / "jobs" / "%j", time_min=10)


@pytest.mark.slow
def test_local_launcher_runs_two_cells_in_subprocesses_into_one_store(tmp_path, job_env):
    argv = ["--launcher", "local", "--models", "convlstm", "persistence", *grid_args(tmp_path)]
    args, options, jobs = launch.plan_jobs(argv)
    assert [job.argv[-3:] for job in jobs] == [["--shard", "1/2", "--no-progress"],
                                               ["--shard", "2/2", "--no-progress"]]
    for job in jobs:
        job.command = FAST
    submitted = submit(make_executor(options), jobs)
    assert len({job.job_id for job in submitted}) == 2
    assert launch.wait_and_report(submitted, args.out) == 0
    found = records(tmp_path)
    assert sorted((r["model"], r["status"]) for r in found) == [("convlstm", "ok"),
                                                                ("persistence", "ok")]
    assert len({r["dataset"] for r in found}) == 1  # one store
    summary = next((tmp_path / "results").rglob("summary.md")).read_text()
    assert "convlstm" in summary and "persistence" in summary  # the parent's report
    for job in submitted:  # each its own process, its log beside it
        assert "--shard" in job.paths.stdout.read_text() or job.paths.stdout.exists()


@pytest.mark.slow
def test_a_job_stopped_mid_training_and_submitted_again_resumes(tmp_path, job_env, monkeypatch):
    argv = [*grid_args(tmp_path), "--models", "convlstm", "--epochs", "1", "--steps", "15",
            "--set", "checkpoint_every_steps=3", "--shard", "1/1", "--no-progress"]
    executor = make_executor(local_options(tmp_path))
    monkeypatch.setenv("BENCH_TEST_HOLD_AFTER", "1")  # waits after step 3's checkpoint for Ctrl-C
    (job,) = submit(executor, [GridJob(argv, FAST)])
    monkeypatch.delenv("BENCH_TEST_HOLD_AFTER")
    last = tmp_path / "results"
    deadline = time.monotonic() + 60
    while not list(last.rglob("last.pt")) and time.monotonic() < deadline and not job.done():
        time.sleep(0.2)
    assert list(last.rglob("last.pt")), "no checkpoint before the job ended"
    job.cancel()  # Ctrl-C to the job, then SIGKILL after a second
    while not job.done():
        time.sleep(0.2)
    assert records(tmp_path) == []  # nothing recorded for the stopped cell
    (again,) = submit(executor, [GridJob(argv, FAST)])
    assert again.result() == 0
    (record,) = records(tmp_path)
    assert record["status"] == "ok" and record["train"]["parts"] == 2
    assert record["train"]["resumed_from_step"] >= 3


def test_the_timeout_signal_checkpoints_then_hands_over_to_submitit(tmp_path, monkeypatch, no_profile):
    """SIGUSR2 (submitit's warning before the time limit) stops training after a checkpoint,
    then submitit's handler requeues the job; the requeued job (checkpoint()) resumes."""
    import bench.train.loop

    save, saved, requeued = bench.train.loop.Trainer._save, [], []

    def save_then_signal(self, name, epoch, result, batch=0, **kwargs):
        save(self, name, epoch, result, batch=batch, **kwargs)
        saved.append(batch)
        if len(saved) == 2:
            signal.raise_signal(signal.SIGUSR2)

    monkeypatch.setattr(bench.train.loop.Trainer, "_save", save_then_signal)
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: requeued.append(signum))
    try:
        job = GridJob([*grid_args(tmp_path), "--models", "convlstm", "--set",
                       "checkpoint_every_steps=1", "--no-progress"])
        with pytest.raises(JobFailed, match="exit status 143"):
            job()
        assert requeued == [signal.SIGUSR2] and records(tmp_path) == []
        monkeypatch.setattr(bench.train.loop.Trainer, "_save", save)
        assert job.checkpoint().function() == 0  # what submitit requeues
    finally:
        signal.signal(signal.SIGUSR2, previous)
    (record,) = records(tmp_path)
    # signalled after iteration 2's checkpoint: stopped after the next iteration, its checkpoint
    assert record["train"]["parts"] == 2 and record["train"]["resumed_from_step"] == 3


@pytest.mark.slow
def test_a_job_of_two_tasks_trains_its_cell_data_parallel(tmp_path, job_env):
    """Two tasks in one job (what --gpus-per-job 2 starts, here on the CPU with gloo): each
    takes its rank from the job's environment, and the cell trains on both."""
    argv = [*grid_args(tmp_path), "--models", "convlstm", "--shard", "1/1", "--no-progress"]
    executor = make_executor(local_options(tmp_path))
    executor.update_parameters(tasks_per_node=2)
    (job,) = submit(executor, [GridJob(argv, FAST)])
    assert job.results() == [0, 0]  # one result per task
    (record,) = records(tmp_path)
    assert record["status"] == "ok"
    assert record["distributed"]["world_size"] == 2 and record["distributed"]["backend"] == "gloo"


def test_local_jobs_take_the_machines_gpus_in_turn():
    from bench.launch.executors import local_gpus

    assert [local_gpus(job, 1, 4) for job in range(5)] == [[0], [1], [2], [3], [0]]
    assert [local_gpus(job, 2, 4) for job in range(3)] == [[0, 1], [2, 3], [0, 1]]
    with pytest.raises(ValueError, match="--gpus-per-job 3: this machine has 2 GPU"):
        local_gpus(0, 3, 2)
