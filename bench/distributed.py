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
  the model (:func:`main_only`); the others get its outcome by broadcast.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Subset


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


def init(device: torch.device) -> str | None:
    """Joins the process group torchrun's environment describes (nccl on CUDA, gloo otherwise);
    returns the backend, or None when this process runs alone."""
    if not launched() or is_distributed():
        return dist.get_backend() if is_distributed() else None
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, **({"device_id": device} if device.type == "cuda" else {}))
    return backend


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast(value):
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


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
                                      if failure is None else (None, type(failure), str(failure)))
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


def shard(clips: Dataset) -> Dataset:
    """This rank's contiguous part of ``clips``; the sizes differ by at most one, and rank 0's
    part starts at the first clip (so example clips are the same as one process's)."""
    if not is_distributed():
        return clips
    n, world, r = len(clips), world_size(), rank()
    return Subset(clips, range(n * r // world, n * (r + 1) // world))


def gather_shards(values: torch.Tensor, total: int) -> torch.Tensor:
    """Every rank's rows of a :func:`shard` of ``total`` clips, concatenated in clip order on
    every rank (``values``: this rank's ``[n_rank, ...]``; unchanged for one process). The
    shards differ in length, so each is padded to the longest for the all-gather and trimmed."""
    if not is_distributed():
        return values
    world = world_size()
    sizes = [total * (r + 1) // world - total * r // world for r in range(world)]
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
