"""``run_bench.py --launcher slurm|local ...``: the grid as submitit jobs, one per cell or shard.

Each job runs the main command with the same options (less the launcher's) on its own
``--shard I/N`` of the grid, into the one store (bench.launch.jobs). ``--launcher slurm``
submits them as one job array and returns (the report: ``run_bench.py report`` once they are
done); ``--launcher local`` runs them as local subprocesses, waits, and writes the report.
``--dry-run`` prints the jobs' commands and, for SLURM, the sbatch script.
"""
from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import datasets

from ..grid.shards import shard_cells
from ..launch.executors import LaunchOptions, make_executor, sbatch_script, submit
from ..launch.jobs import GridJob
from . import report, run
from .checks import check_dataset_config

NOT_WITH_LAUNCHER = ("shard", "list_models", "list_datasets")


def launch_flags(parser: argparse.ArgumentParser) -> dict[str, bool]:
    """The launcher's options: flag -> whether it takes a value."""
    group = next(g for g in parser._action_groups if g.title == "launcher")
    return {flag: action.nargs != 0 for action in group._group_actions
            for flag in action.option_strings}


def job_argv(argv: list[str], flags: dict[str, bool], shard: str) -> list[str]:
    """``argv`` without the launcher's options, with ``--shard`` and ``--no-progress``."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token.split("=", 1)[0] in flags:
            skip = flags[token.split("=", 1)[0]] and "=" not in token
        else:
            kept.append(token)
    return [*kept, "--shard", shard, *([] if "--no-progress" in kept else ["--no-progress"])]


def time_minutes(text: str) -> int:
    """``--time-limit``: minutes, or ``H:MM:SS`` / ``H:MM`` (SLURM's ``D-H:MM:SS`` too)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d\d))?(?::(\d\d))?", text.strip())
    if match is None or (match[1] and not match[3]):
        raise ValueError(f"--time-limit {text!r}: expected minutes (90), H:MM:SS (24:00:00) or "
                         "D-H:MM:SS (2-00:00:00)")
    days, first, second, third = (int(g) if g else 0 for g in match.groups())
    minutes = first if match[3] is None else days * 1440 + first * 60 + second + (third > 0)
    if minutes < 1:
        raise ValueError(f"--time-limit {text!r}: must be at least one minute")
    return minutes


def default_gpus(launcher: str) -> int:
    """One GPU per job on SLURM; locally one where this machine has CUDA, else none (a local
    job sees only the GPUs it is given)."""
    if launcher == "slurm":
        return 1
    import torch

    return int(torch.cuda.is_available())


def launch_options(args: argparse.Namespace) -> LaunchOptions:
    for name in ("jobs", "gpus_per_job", "cpus_per_job", "slurm_array_parallelism"):
        if getattr(args, name) is not None and getattr(args, name) < (0 if name == "gpus_per_job" else 1):
            raise ValueError(f"--{name.replace('_', '-')} must be >= "
                             f"{0 if name == 'gpus_per_job' else 1}; got {getattr(args, name)}")
    if args.max_requeues < 0:
        raise ValueError(f"--max-requeues must be >= 0; got {args.max_requeues}")
    sbatch = {}
    for text in args.slurm_option:
        key, sep, value = text.partition("=")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_-]*", key):
            raise ValueError(f"--slurm-option {text!r}: expected KEY=VALUE with an sbatch option "
                             "name, e.g. account=proj or mem=64G")
        sbatch[key] = value
    gpus = args.gpus_per_job if args.gpus_per_job is not None else default_gpus(args.launcher)
    return LaunchOptions(
        launcher=args.launcher, folder=Path(args.jobs_folder or Path(args.out) / "jobs" / "%j"),
        time_min=time_minutes(args.time_limit), gpus=gpus, cpus=args.cpus_per_job,
        partition=args.slurm_partition, array_parallelism=args.slurm_array_parallelism,
        max_requeues=args.max_requeues, setup=list(args.job_setup), sbatch=sbatch)


def plan_jobs(argv: list[str]) -> tuple[argparse.Namespace, LaunchOptions, list[GridJob]]:
    """The parsed options, the launcher's, and one job per shard (a ValueError for bad ones)."""
    parser = run.build_parser()
    parser.allow_abbrev = False  # the launcher's options are removed from the jobs' by name
    args = parser.parse_args(argv)
    for name in NOT_WITH_LAUNCHER:
        if getattr(args, name):
            raise ValueError(f"--{name.replace('_', '-')} is not for --launcher: the launcher "
                             "shards the grid itself (--jobs N) and runs it")
    if args.dataset_config:
        check_dataset_config(args.dataset_config)
        args.dataset = datasets.register_config(args.dataset_config)
    request = run.make_request(args)  # every option checked here, before anything is submitted
    cells = len(shard_cells(request.models, request.seeds))
    count = args.jobs or cells
    if count > cells:
        raise ValueError(f"--jobs {count}: the grid has {cells} (model, seed) cells; at most one "
                         f"job per cell (--jobs {cells} or fewer)")
    options = launch_options(args)
    flags = launch_flags(parser)
    jobs = [GridJob(job_argv(argv, flags, f"{i}/{count}")) for i in range(1, count + 1)]
    return args, options, jobs


def main(argv: list[str]) -> int:
    try:
        args, options, jobs = plan_jobs(argv)
        if args.dry_run:
            print(describe(options, jobs))
            return 0
        executor = make_executor(options)
    except SystemExit as exit_:  # bad arguments: one line already printed
        return exit_.code
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    submitted = submit(executor, jobs)
    for number, (job, submission) in enumerate(zip(submitted, jobs, strict=True), 1):
        print(f"job {number} of {len(jobs)}: {job.job_id}: {command_line(submission)}")
    print(f"logs: {options.folder}")
    if options.launcher == "slurm":
        print(f"submitted {len(jobs)} jobs; when they are done: python run_bench.py report --out "
              f"{shlex.quote(args.out)}")
        return 0
    return wait_and_report(submitted, args.out)


def wait_and_report(submitted: list, out: str) -> int:
    """Waits for the local jobs, says how each ended, then rebuilds the report below ``out``."""
    failed = 0
    for number, job in enumerate(submitted, 1):
        try:
            job.result()
            print(f"job {number} of {len(submitted)} ({job.job_id}): done")
        except Exception as error:  # the job's own exception, or submitit's
            failed += 1
            last = (str(error).strip().splitlines() or [type(error).__name__])[-1]
            print(f"job {number} of {len(submitted)} ({job.job_id}): FAILED: {last} (log: "
                  f"{job.paths.stderr})", file=sys.stderr)
    code = report.main(["--out", out])
    return 1 if failed or code else 0


def command_line(job: GridJob) -> str:
    return shlex.join(["python", "run_bench.py", *job.argv])


def describe(options: LaunchOptions, jobs: list[GridJob]) -> str:
    """What --dry-run prints: each job's command; for SLURM, the sbatch script of the array."""
    lines = [f"{options.launcher}: {len(jobs)} jobs"]
    lines += [f"  job {i} (array index {i - 1}): {command_line(job)}" for i, job in enumerate(jobs, 1)]
    if options.launcher == "slurm":
        lines += ["", "sbatch script (each array task runs its pickled job):", "",
                  sbatch_script(options, len(jobs))]
    return "\n".join(lines)
