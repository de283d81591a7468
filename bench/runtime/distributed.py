"""Data-parallel training under ``torchrun``: the process group, ranks, and what each rank does.

One process (no torchrun, or ``WORLD_SIZE`` 1) runs exactly as without this module: every
helper below is then the identity or a no-op. Under ``torchrun --nproc_per_node=N``:

* the configured batch is the GLOBAL batch; every rank draws it from the same seeded stream
  (and the same scheduled-sampling masks) and trains on its own contiguous slice of rows
  (:func:`rank_rows`), so the ranks' slices together are exactly the batch one process draws;
* DistributedDataParallel averages gradients over ranks, so a loss SUMMED over the batch is
  multiplied by the world size first (:func:`loss_scale`) to give one process's gradient;
* evaluation is split into contiguous shards of the clips (:func:`shard`) and the per-frame
  metric sums are all-reduced (``PerFrameMetrics``);
* rank 0 alone writes the store, checkpoints, examples, plots and tables, and alone profiles
  the model (:func:`main_only`); the others get its outcome by broadcast;
* every collective waits at most ``STBENCH_COLLECTIVE_TIMEOUT`` seconds (:func:`collective_timeout`)
  for the other ranks: a stalled or dead rank turns into :class:`RankLost` (the run stops, nothing
  is recorded for the cell, a relaunch resumes from the last checkpoint) instead of a wait for
  ever. Rank 0's solo work (:func:`main_only`, :func:`main_first`) is waited for on a separate
  group with :data:`SOLO_WORK_TIMEOUT`: loading or downloading data and measuring costs may take
  longer than a training collective ever should.
"""
from __future__ import annotations

import contextlib
import datetime
import itertools
import os
import time
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Subset

TIMEOUT_ENV = "STBENCH_COLLECTIVE_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0  # NCCL's own default; far above any iteration's or evaluation's wait
SOLO_WORK_TIMEOUT = datetime.timedelta(hours=24)  # the others wait this long for rank 0's solo work
# Exit status when a rank stalled or died (sysexits' EX_TEMPFAIL: try again; a relaunch resumes).
RANK_LOST_EXIT = 75
_groups: dict[str, object] = {}  # "solo": rank 0's solo work; "control": CPU flags (NCCL runs)


def launched() -> bool:
    """Whether torchrun (or an equivalent launcher) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def rank_device(device: torch.device) -> torch.device:
    """Under torchrun, ``cuda`` means ``cuda:LOCAL_RANK``; an explicit index is an error there
    (every rank would share one GPU)."""
    if not launched() or device.type != "cuda":
        return device
    if device.index is not None:
        raise ValueError(f"--device {device} names one GPU, but torchrun started "
                         f"{os.environ['WORLD_SIZE']} processes; use --device cuda (each rank "
                         "takes cuda:LOCAL_RANK) and choose GPUs with CUDA_VISIBLE_DEVICES")
    return torch.device("cuda", local_rank())


def collective_timeout() -> datetime.timedelta:
    """How long a collective waits for the other ranks: ``STBENCH_COLLECTIVE_TIMEOUT`` seconds
    (default 600). Past it, the waiting ranks stop the run with :class:`RankLost`."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{TIMEOUT_ENV}={text!r} is not a timeout; accepted: a number of seconds "
                         f"above 0 (default {DEFAULT_TIMEOUT_S:g})")
    return datetime.timedelta(seconds=seconds)


def init(device: torch.device) -> str | None:
    """Joins the process group torchrun's environment describes (nccl on CUDA, gloo otherwise),
    its collectives bounded by :func:`collective_timeout`, plus the gloo groups for rank 0's solo
    work and (NCCL only) for CPU flags; returns the backend, or None when this process runs alone."""
    if not launched() or is_distributed():
        return dist.get_backend() if is_distributed() else None
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=collective_timeout(),
                            **({"device_id": device} if device.type == "cuda" else {}))
    _groups["solo"] = dist.new_group(backend="gloo", timeout=SOLO_WORK_TIMEOUT)
    _groups["control"] = dist.new_group(backend="gloo", timeout=collective_timeout()) \
        if backend != "gloo" else None  # gloo: the default group carries CPU tensors itself
    return backend


def shutdown() -> None:
    _groups.clear()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast(value, group=None):
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, group=group)
    return box[0]


def max_over_ranks(value: int) -> int:
    """The largest of every rank's ``value`` (every rank must call it at the same point): e.g.
    the signal that asked one rank only to stop, so that every rank stops at the same iteration.
    A CPU all-reduce (gloo): on NCCL runs too it makes the host wait for no GPU work."""
    if not is_distributed():
        return value
    total = torch.tensor([int(value)])
    dist.all_reduce(total, op=dist.ReduceOp.MAX, group=_groups.get("control"))
    return int(total.item())


class RankLost(RuntimeError):
    """A collective failed because another rank stalled (past the collective timeout) or died:
    no model's failure, so nothing is recorded; the run stops with :data:`RANK_LOST_EXIT` and a
    relaunch resumes from the last checkpoint."""

    exit_code = RANK_LOST_EXIT


# How gloo (and NCCL, through DistBackendError) report a peer that stalled or went away.
_LOST_PEER = ("timed out", "connection closed by peer", "connection reset by peer",
              "broken pipe", "pair closure", "connection refused")


def is_rank_lost(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed for want of another rank (only under a
    process group: one process has no peers to lose)."""
    if not is_distributed() or isinstance(error, RankLost):
        return False
    message = str(error).lower()
    return isinstance(error, dist.DistBackendError) or (
        isinstance(error, RuntimeError) and any(cue in message for cue in _LOST_PEER))


def rank_lost(error: BaseException, where: str, checkpoint: os.PathLike | None) -> RankLost:
    """The one-line :class:`RankLost` for ``error``, a collective that failed ``where``: the
    timeout, the rank(s) that never answered (:func:`unanswered_ranks`), and what a relaunch
    resumes from (``checkpoint``; None: the cell starts again)."""
    timeout = collective_timeout().total_seconds()
    missing = unanswered_ranks(min(timeout, 30.0))
    who = ("another rank" if missing is None else "no rank (they all answered afterwards)"
           if not missing else f"rank{'s' if len(missing) > 1 else ''} "
           f"{', '.join(map(str, missing))}")
    cause = (str(error).strip() or type(error).__name__).splitlines()[0]
    cause = cause.split("] ", 1)[-1] if cause.startswith("[") else cause  # gloo's source path
    resume = f"resume from {checkpoint}" if checkpoint else "train the cell again"
    return RankLost(f"rank {rank()}: a collective {where} got no answer from {who} within the "
                    f"{timeout:g} s collective timeout ({TIMEOUT_ENV}) or lost its connection "
                    f"({cause[:160]}); stopping every rank, nothing was recorded for the cell. "
                    f"Relaunch the same command to {resume}")


def unanswered_ranks(grace_s: float) -> list[int] | None:
    """The ranks that stalled or died, once a collective failed: every rank that saw it fail
    checks in at torchrun's key-value store (``MASTER_ADDR:MASTER_PORT``), and those that did
    not within ``grace_s`` are named; None when the store cannot be reached."""
    try:
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                              is_master=False, timeout=datetime.timedelta(seconds=grace_s))
        prefix = (f"stbench/rank-lost/{os.environ.get('TORCHELASTIC_RUN_ID', '')}/"
                  f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}")
        store.set(f"{prefix}/{rank()}", "here")
        deadline = time.monotonic() + grace_s
        while True:
            missing = [r for r in range(world_size()) if not store.check([f"{prefix}/{r}"])]
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.1)
    except (KeyError, ValueError, RuntimeError, OSError):
        return None


class RemoteError(RuntimeError):
    """An error raised on rank 0 inside :func:`main_only`, re-raised on the other ranks."""


def _on_main(work: Callable[[], object], share: bool):
    """Rank 0 runs ``work``; every rank gets (its outcome if ``share``, else rank 0's own only;
    the failure's type and message) by broadcast. Rank 0 re-raises its own failure."""
    outcome, failure = None, None
    if is_main():
        try:
            outcome = work()
        except Exception as error:
            failure = error
    shared, kind, message = broadcast((outcome if share else None, None, None)
                                      if failure is None else (None, type(failure), str(failure)),
                                      group=_groups.get("solo"))
    if failure is not None:
        raise failure
    return outcome if is_main() else shared, kind, message


def main_only(work: Callable[[], object]):
    """Runs ``work`` on rank 0 only; every rank returns its result or raises its error, so the
    ranks take the same path afterwards (and never wait at a collective rank 0 skipped)."""
    if not is_distributed():
        return work()
    outcome, kind, message = _on_main(work, share=True)
    if kind is not None:
        raise RemoteError(f"on rank 0: {kind.__name__}: {message}")
    return outcome


def main_first(work: Callable[[], object]):
    """Runs ``work`` on rank 0, then (if it succeeded) on the others: e.g. loading a dataset,
    so that only rank 0 writes its cached evaluation files. A failure on rank 0 is raised on
    every rank as the same type when it can be rebuilt from its message (ValueError...)."""
    if not is_distributed():
        return work()
    outcome, kind, message = _on_main(work, share=False)
    if kind is not None:
        raise kind(message) if issubclass(kind, ValueError | KeyError | OSError) else \
            RemoteError(f"on rank 0: {kind.__name__}: {message}")
    return outcome if is_main() else work()


def check_batch(batch_size: int) -> int:
    """The per-rank batch; the global batch must split evenly over the ranks."""
    world = world_size()
    if batch_size % world:
        raise ValueError(f"batch size {batch_size} does not split evenly over {world} "
                         f"processes; use a multiple of {world} (the batch is the global one)")
    return batch_size // world


def rank_rows(batch: torch.Tensor | None) -> torch.Tensor | None:
    """This rank's contiguous slice of a global batch's rows (the identity for one process)."""
    if batch is None or not is_distributed():
        return batch
    per_rank = check_batch(batch.shape[0])
    start = rank() * per_rank
    return batch[start : start + per_rank]


def loss_scale(loss: str) -> int:
    """What a rank's loss is multiplied by so that DDP's gradient AVERAGE over ranks equals one
    process's gradient: the world size for a loss summed over the batch (``mse+l1``, its
    auxiliary terms included), 1 for a mean over the batch (``mse``)."""
    return world_size() if loss == "mse+l1" else 1


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model wrapped in DistributedDataParallel, or itself when alone or not trainable
    (DDP refuses a model without trainable parameters, e.g. persistence)."""
    if not is_distributed() or not any(p.requires_grad for p in model.parameters()):
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shard_starts(total: int, world: int) -> list[int]:
    """Where each rank's part of ``total`` clips starts, and the end: sizes that differ by at
    most one, the larger ones first, so rank 0's part is never empty while there is a clip."""
    return [-(-total * r // world) for r in range(world + 1)]


def shard(clips: Dataset) -> Dataset:
    """This rank's contiguous part of ``clips`` (:func:`shard_starts`); rank 0's part starts at
    the first clip (so example clips are the same as one process's)."""
    if not is_distributed():
        return clips
    starts, r = shard_starts(len(clips), world_size()), rank()
    return Subset(clips, range(starts[r], starts[r + 1]))


def gather_shards(values: torch.Tensor, total: int) -> torch.Tensor:
    """Every rank's rows of a :func:`shard` of ``total`` clips, concatenated in clip order on
    every rank (``values``: this rank's ``[n_rank, ...]``; unchanged for one process). The
    shards differ in length, so each is padded to the longest for the all-gather and trimmed."""
    if not is_distributed():
        return values
    world = world_size()
    starts = shard_starts(total, world)
    sizes = [end - start for start, end in itertools.pairwise(starts)]
    if values.shape[0] != sizes[rank()]:
        raise ValueError(f"rank {rank()} has {values.shape[0]} rows; its shard of {total} "
                         f"clips has {sizes[rank()]}")
    device = _collective_device()
    padded = torch.zeros((max(sizes), *values.shape[1:]), dtype=values.dtype, device=device)
    padded[: values.shape[0]] = values.to(device)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)]).to(values.device)


def all_mean(values: float | list[float]) -> float | list[float]:
    """The mean over ranks of a float, or of a list of floats element-wise (unchanged for one
    process); every rank must call it with as many values."""
    if not is_distributed():
        return values
    many = isinstance(values, list | tuple)
    total = torch.tensor(list(values) if many else [values], dtype=torch.float64,
                         device=_collective_device())
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    means = (total / world_size()).tolist()
    return means if many else means[0]


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")


def describe(batch_size: int) -> dict:
    """What a record says about how it was run: world size, per-rank batch, backend."""
    return {"world_size": world_size(), "per_rank_batch": batch_size // world_size(),
            "backend": dist.get_backend() if is_distributed() else None}


@contextlib.contextmanager
def process_group(device: torch.device):
    """``with process_group(device):`` joins torchrun's group (if any) and leaves it after."""
    backend = init(device)
    try:
        yield backend
    finally:
        if backend is not None:
            shutdown()
