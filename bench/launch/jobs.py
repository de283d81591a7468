"""One job of a launched grid: the main command on one shard, as submitit runs it.

A job is a picklable callable (:class:`GridJob`): submitit pickles it, starts it on the cluster
(or in a local subprocess) and calls it there. It runs the main command in-process on its own
``--shard I/N`` of the grid, into the one store every job shares (the cells' claims,
bench.grid.claims, keep two jobs from training one cell).

Several GPUs in a job: submitit starts one task per GPU (``tasks_per_node = gpus``) and each task
takes the torch.distributed environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, the master's
address and port) from the job's (:class:`submitit.helpers.TorchDistributedEnvironment`), so the
tasks are the ranks of the torchrun-style data parallelism of bench.runtime.distributed. No
torchrun inside the job: SLURM starts, signals and kills each rank itself, and submitit's
timeout signal reaches every rank directly (a torchrun agent would stand in between).

Requeue: shortly before the time limit submitit signals the job (SIGUSR2, ``signal_delay_s``
ahead). The job turns it into the SIGTERM stop the training loop already handles (finish the
iteration, write ``last.pt``, stop), then lets submitit checkpoint and requeue it:
:meth:`GridJob.checkpoint` resubmits the same job, and the requeued run resumes each cell from its
last checkpoint, as a rerun of the same command does. A preemption (SLURM's SIGTERM) is the same
stop; SLURM requeues the job where the partition requeues preempted jobs.
"""
from __future__ import annotations

import importlib
import os
import signal

import submitit

DEFAULT_COMMAND = "bench.cli.run:main"  # the main command's main(argv) -> exit status
STOPPED = (130, 143)  # exit statuses of a run stopped by Ctrl-C or SIGTERM (bench.train.signals)


class JobFailed(RuntimeError):
    """The job's command ended with a non-zero exit status (submitit reports the job failed)."""


def resolve(command: str):
    """``'package.module:function'`` -> the function (imported where the job runs)."""
    module, sep, name = command.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"job command {command!r}: expected 'package.module:function'")
    return getattr(importlib.import_module(module), name)


def timeout_signal() -> int:
    """The signal submitit sends before the time limit (SIGUSR2 unless SUBMITIT_PREEMPT_SIGNAL)."""
    return getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG)


class GridJob(submitit.helpers.Checkpointable):
    """The main command with ``argv`` (its own ``--shard I/N`` among them), run in the job's
    process; ``command``: the function to call (``module:function``, default the main command)."""

    def __init__(self, argv: list[str], command: str = DEFAULT_COMMAND):
        self.argv, self.command = list(argv), command

    def __call__(self) -> int:
        ranks = distributed_environment()
        with _StopOnTimeout() as timeout:
            code = resolve(self.command)(list(self.argv))
        if timeout.signalled and code in STOPPED:
            timeout.requeue()  # submitit's handler: checkpoint() below, requeue, exit
        if code != 0:
            raise JobFailed(f"run_bench.py {' '.join(self.argv)} ended with exit status {code}"
                            + (f" (rank {ranks[0]} of {ranks[1]})" if ranks[1] > 1 else "")
                            + (": stopped by a signal; submitting the same job again resumes "
                               "it from its checkpoints" if code in STOPPED else ""))
        return code

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        """Requeue: the same job again (each cell resumes from its ``last.pt``)."""
        return submitit.helpers.DelayedSubmission(GridJob(self.argv, self.command))


def distributed_environment() -> tuple[int, int]:
    """In a job of several tasks, the torch.distributed variables of this task (rank, world
    size, local rank, master address and port); returns (rank, world size)."""
    try:
        tasks = submitit.JobEnvironment().num_tasks
    except RuntimeError:  # not inside a submitit job (called directly): one process
        return 0, 1
    if tasks <= 1:
        return 0, 1
    # CUDA_VISIBLE_DEVICES kept whole: each rank takes cuda:LOCAL_RANK (bench.runtime.distributed)
    env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return env.rank, env.world_size


class _StopOnTimeout:
    """While the command runs: submitit's timeout signal asks the run to stop as SIGTERM does
    (a checkpoint first); :meth:`requeue` then hands it to submitit's own handler."""

    def __init__(self):
        self.signalled = False
        self._signum = timeout_signal()
        self._submitit = None

    def __enter__(self):
        self._submitit = signal.signal(self._signum, self._stop)
        return self

    def _stop(self, signum, frame):
        self.signalled = True
        os.kill(os.getpid(), signal.SIGTERM)  # the training loop's stop: iteration, checkpoint

    def __exit__(self, *exc):
        signal.signal(self._signum, self._submitit)
        return False

    def requeue(self) -> None:
        if callable(self._submitit):
            self._submitit(self._signum, None)
