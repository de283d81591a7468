"""The main command's launcher options (``--launcher slurm|local`` and the jobs' resources),
added to its parser here and read by bench.cli.launch."""
from __future__ import annotations

import argparse

from ..launch import LAUNCHERS


def add_launch_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "launcher", "run the grid as cluster jobs through submitit (README 'Through submitit')")
    group.add_argument("--launcher", choices=LAUNCHERS,
                       help="slurm: submit the grid as a SLURM job array (one job per cell, or "
                            "--jobs N shards), every job writing to the one store; local: the "
                            "same jobs as subprocesses of this command, then the report")
    group.add_argument("--jobs", type=int, metavar="N",
                       help="number of jobs (each runs --shard I/N of the grid; default: one per "
                            "(model, seed) cell)")
    group.add_argument("--gpus-per-job", type=int, metavar="N",
                       help="GPUs per job (default 1; local: 1 where CUDA is present, else 0; "
                            "local jobs take the machine's GPUs in turn); with 2 or more, one "
                            "task per GPU trains each cell data-parallel")
    group.add_argument("--cpus-per-job", type=int, metavar="N", help="CPUs per task (sbatch "
                                                                      "--cpus-per-task)")
    group.add_argument("--time-limit", default="24:00:00", metavar="H:MM:SS|MINUTES",
                       help="each job's time limit (default 24:00:00); a job that reaches it "
                            "checkpoints and is requeued (--max-requeues)")
    group.add_argument("--max-requeues", type=int, default=3, metavar="N",
                       help="how often a job that reaches its time limit is requeued (default 3)")
    group.add_argument("--slurm-partition", metavar="NAME", help="the SLURM partition")
    group.add_argument("--slurm-array-parallelism", type=int, metavar="N",
                       help="at most N jobs of the array at once (default: all)")
    group.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                       help="any other sbatch option, e.g. --slurm-option account=proj "
                            "--slurm-option mem=64G")
    group.add_argument("--job-setup", action="append", default=[], metavar="LINE",
                       help="a shell line each job runs first, e.g. 'source .venv/bin/activate'")
    group.add_argument("--jobs-folder", metavar="DIR",
                       help="the jobs' logs and submitit's files (default: OUT/jobs/%%j, %%j the "
                            "job id)")
    group.add_argument("--dry-run", action="store_true",
                       help="print each job's command (and for slurm the sbatch script) and "
                            "submit nothing")
