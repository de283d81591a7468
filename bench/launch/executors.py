"""submitit executors for a launched grid: SLURM (``sbatch``, one job array) or local
subprocesses, from the launcher's options; the sbatch script a SLURM submission writes.

Every job gets the same resources: ``gpus`` GPUs and as many tasks (one rank per GPU,
bench.launch.jobs), ``cpus`` CPUs per task, a time limit, and on SLURM a partition and any
further ``#SBATCH`` option. The jobs' logs and submitit's pickles go to ``folder``
(``%j`` in it: the job id). The jobs find the harness's checkout on ``PYTHONPATH`` (set by the
sbatch script's first line; locally, in the environment the jobs inherit), so they import the
same code as the command that submitted them.
"""
from __future__ import annotations

import contextlib
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import submitit
from submitit.slurm import slurm

from . import LAUNCHERS

ROOT = Path(__file__).resolve().parents[2]  # the checkout: run_bench.py, bench/, models/, datasets/
SIGNAL_DELAY_S = 120  # the timeout signal's lead on the time limit: an iteration and a checkpoint


@dataclass
class LaunchOptions:
    """How the jobs run: ``launcher`` (local or slurm), the resources of each job, the folder of
    the jobs' logs; the SLURM-only ones are ignored by the local launcher."""

    launcher: str
    folder: Path
    time_min: int = 24 * 60
    gpus: int = 0
    cpus: int | None = None
    partition: str | None = None
    array_parallelism: int | None = None
    max_requeues: int = 3
    setup: list[str] = field(default_factory=list)
    sbatch: dict[str, str] = field(default_factory=dict)  # further #SBATCH options


def setup_lines(options: LaunchOptions) -> list[str]:
    """The shell lines each job runs first: the checkout on PYTHONPATH, then the user's."""
    root = shlex.quote(str(ROOT))
    return [f'export PYTHONPATH={root}"${{PYTHONPATH:+:$PYTHONPATH}}"', *options.setup]


def slurm_parameters(options: LaunchOptions) -> dict:
    """submitit's SLURM parameters (sbatch options) for ``options``."""
    parameters = {"job_name": "stbench", "time": options.time_min,
                  "ntasks_per_node": max(1, options.gpus), "signal_delay_s": SIGNAL_DELAY_S,
                  "setup": setup_lines(options)}
    optional = {"partition": options.partition, "cpus_per_task": options.cpus,
                "gpus_per_node": options.gpus or None,
                "array_parallelism": options.array_parallelism,
                # preempted jobs go back in the queue (they resume from their checkpoints)
                "additional_parameters": {"requeue": True, **options.sbatch}}
    parameters.update({k: v for k, v in optional.items() if v is not None})
    return parameters


def make_executor(options: LaunchOptions) -> submitit.Executor:
    """The executor that submits the jobs (on SLURM: needs ``srun``/``sbatch`` on this machine)."""
    if options.launcher == "slurm":
        executor = submitit.SlurmExecutor(options.folder, max_num_timeout=options.max_requeues)
        executor.update_parameters(**slurm_parameters(options))
        return executor
    if options.launcher != "local":
        raise ValueError(f"--launcher {options.launcher!r}: accepted: {', '.join(LAUNCHERS)}")
    executor = submitit.LocalExecutor(options.folder, max_num_timeout=options.max_requeues)
    # Setup lines put a shell between the job and its controller, which then no longer gets
    # a job's cancel (SIGINT): only the user's lines are run so.
    executor.update_parameters(timeout_min=options.time_min, gpus_per_node=options.gpus,
                               tasks_per_node=max(1, options.gpus), signal_delay_s=SIGNAL_DELAY_S,
                               **({"setup": list(options.setup)} if options.setup else {}))
    return executor


@contextlib.contextmanager
def checkout_on_path():
    """While local jobs are started (they copy this process's environment): the checkout first
    on PYTHONPATH."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([before] if before else [])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def local_gpus(job: int, gpus: int, available: int) -> list[int]:
    """The GPUs local job ``job`` (from 0) sees: the next ``gpus`` of the machine's
    ``available``, round-robin, so that side-by-side jobs spread over the GPUs."""
    if gpus > available:
        raise ValueError(f"--gpus-per-job {gpus}: this machine has {available} GPU(s)")
    return [(job * gpus + k) % available for k in range(gpus)]


def submit(executor: submitit.Executor, jobs: list) -> list:
    """Submits ``jobs`` (one SLURM job array; local: one subprocess each, each on its own
    GPUs, :func:`local_gpus`); their submitit jobs."""
    with checkout_on_path():
        gpus = executor.parameters.get("gpus_per_node", 0)
        if not isinstance(executor, submitit.LocalExecutor) or not gpus:
            return executor.submit_array(jobs)
        import torch

        submitted = []
        for number, job in enumerate(jobs):
            executor.update_parameters(visible_gpus=local_gpus(number, gpus,
                                                               torch.cuda.device_count()))
            submitted.append(executor.submit(job))
        return submitted


class _ScriptOnly(submitit.SlurmExecutor):
    """A SLURM executor that only writes scripts: it needs no ``srun`` on this machine."""

    @classmethod
    def affinity(cls) -> int:
        return 1


def sbatch_script(options: LaunchOptions, jobs: int) -> str:
    """The sbatch script that submitting ``jobs`` jobs writes (a job array when more than one),
    as submitit makes it (``submitit.slurm.slurm._make_sbatch_string``, submitit 1.5): each array
    task runs the pickled job of its index."""
    executor = _ScriptOnly(options.folder, max_num_timeout=options.max_requeues)
    executor.update_parameters(**slurm_parameters(options))  # checks them as a submission does
    parameters = dict(executor.parameters, **({"map_count": jobs} if jobs > 1 else {}))
    return slurm._make_sbatch_string(command=executor._submitit_command_str,
                                     folder=executor.folder, **parameters)
