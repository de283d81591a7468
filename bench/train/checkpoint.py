"""Checkpoints: how a training run's state is written and read back (:class:`Checkpointer`), and
when last.pt is due (:class:`PeriodicCheckpointer`).

The split follows fvcore's ``fvcore/common/checkpoint.py`` (``Checkpointer``: save and load the
model and its checkpointables; ``PeriodicCheckpointer``: save every so many iterations) and
torchtitan's ``torchtitan/components/checkpoint.py`` (a ``CheckpointManager`` the trainer owns
and asks at each step). The training loop composes the two.

The file format (``LAYOUT``): one ``torch.save`` of a dict, read with ``weights_only=True``:

- ``model``, ``optimizer``, ``scheduler``, ``scaler``: the components' ``state_dict()``;
- ``epoch``: the epoch to resume at; ``batch``: the iteration within it (0: at its start);
- ``losses``: the training losses read since the last validation; ``generator``: the epoch's
  scheduled-sampling generator state mid-epoch (None at an epoch's end);
- ``rng``: the global random states (torch, CUDA, NumPy, Python) as tensors and lists;
- ``history``, ``best`` ([best epoch, best validation MSE]), ``elapsed_s`` (wall time of every
  part so far), ``parts`` (processes so far), ``budget`` (a budgeted run's state, or None).

``last.pt`` is where a run resumes; ``best.pt`` holds the weights with the best validation MSE.
"""
from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..runtime import distributed
from ..runtime.files import atomic_open, move_aside

# what a file must hold to be resumed from (``load_checkpoint``'s check)
CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "history", "best")
COMPONENTS = ("model", "optimizer", "scheduler", "scaler")
# every key a checkpoint file holds, in the order it is written
LAYOUT = (*COMPONENTS, "epoch", "batch", "losses", "generator", "rng", "history", "best",
          "elapsed_s", "parts", "budget")


class DamagedCheckpoint(RuntimeError):
    """A checkpoint file that cannot be read back (truncated, overwritten, not ours)."""


def load_checkpoint(path: Path, device, keys: tuple = CHECKPOINT_KEYS) -> dict:
    """A checkpoint read with ``weights_only=True`` (no pickled code ever runs); a file that
    cannot be read, or lacks ``keys``, is a DamagedCheckpoint naming it. torch's own message
    is cut to its first sentence: its advice to load with ``weights_only=False`` is unsafe for a
    file of unknown origin and is never passed on."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise DamagedCheckpoint(f"{path} is damaged or not a checkpoint: "
                                f"{_load_failure(error)}") from None
    missing = [key for key in keys if not isinstance(state, dict) or key not in state]
    if missing:
        raise DamagedCheckpoint(f"{path} is not a checkpoint of this harness: it has no "
                                f"{', '.join(missing)}")
    return state


def _load_failure(error: Exception) -> str:
    """What went wrong reading a checkpoint, in torch's words, without its weights_only advice."""
    text = str(error).strip().split("\n")[0]
    if "weights_only" in text or "Weights only" in text:
        return ("it holds something other than tensors and plain values, which is refused "
                "unread (it may run code)")
    return text.split(". ")[0] or type(error).__name__


class Checkpointer:
    """How a run's checkpoints are written and read: ``components`` (model, optimizer, scheduler,
    scaler, by those names) and the global random states saved atomically into ``directory``
    with the loop's progress fields; read back checked, a damaged file set aside with a warning.

    Under DDP (``parallel``) rank 0 alone writes and sets files aside; every rank reads.
    """

    def __init__(self, directory: Path, device, components: dict, log=print,
                 parallel: bool = False):
        self.directory, self.device, self.log = Path(directory), device, log
        self.components, self.parallel = components, parallel

    def save(self, name: str, progress: dict) -> bool:
        """Writes ``name`` (never half a file, even killed): the components' states, the random
        states, and ``progress`` (the rest of ``LAYOUT``); whether this process wrote it. Rank 0
        alone writes under DDP (with no collective: the ranks need not agree on when a timed
        checkpoint is due)."""
        if not distributed.is_main():
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        fields = {**{key: self.components[key].state_dict() for key in COMPONENTS},
                  **progress, "rng": _rng_states()}
        state = {key: fields[key] for key in LAYOUT}
        with atomic_open(self.directory / name) as handle:
            torch.save(state, handle)
        return True

    def latest(self, names: tuple[str, ...]) -> tuple[Path | None, dict | None]:
        """The first of ``names`` that reads back (a damaged one is moved aside with a warning and
        the next tried; a missing one ends the search) and its state; (None, None): none."""
        if not self.parallel:
            return self._usable(names) or (None, None)
        # rank 0 alone sets damaged files aside; every rank reads its choice
        name = distributed.main_only(lambda: (self._usable(names) or (None,))[0])
        path = self.directory / name if name else None
        return path, (load_checkpoint(path, self.device) if path else None)

    def _usable(self, names: tuple[str, ...]) -> tuple[Path, dict] | None:
        for name in names:
            path = self.directory / name
            if not path.exists():
                return None
            try:
                return path, load_checkpoint(path, self.device)
            except DamagedCheckpoint as error:
                self.set_aside(path, error)
        return None

    def restore(self, state: dict) -> None:
        """Loads the components' states and the random states of ``state`` (a file's contents);
        its mask generator state, if any, moved to the CPU (where the generator lives)."""
        for key in COMPONENTS:
            self.components[key].load_state_dict(state[key])
        if state.get("rng") is not None:
            _set_rng_states(state["rng"])
        if state.get("generator") is not None:
            state["generator"] = state["generator"].cpu()

    def load_best(self) -> None:
        """Loads best.pt's weights into the model, if there is one. A damaged best.pt is set
        aside, last.pt with it, and the DamagedCheckpoint raised: its weights are lost, and
        last.pt holds the last ones, not the best, so the cell has to train again from scratch
        (the runner does, once)."""
        if self.parallel:
            distributed.barrier()  # best.pt is written by rank 0
        path = self.directory / "best.pt"
        if not path.exists():
            return
        try:
            state = load_checkpoint(path, self.device, keys=("model",))
        except DamagedCheckpoint as error:
            if distributed.is_main():
                self.set_aside(path, error)
                move_aside(self.directory / "last.pt", "without-best")
            raise
        self.components["model"].load_state_dict(state["model"])

    def set_aside(self, path: Path, error: DamagedCheckpoint) -> None:
        """Moves a damaged file aside (kept, renamed) and says so."""
        aside = move_aside(path, "damaged")
        self.log(f"   warning: {error}; moved aside to {aside}")


class PeriodicCheckpointer:
    """When last.pt is due, after iteration ``done`` (counted from the start of training):

    - epochs: at every ``checkpoint_every``-th epoch's end, and at the last;
    - a budget: at each of its checkpoints (the iterations where it validates, bench.train.budget);
    - both, mid-epoch: every ``checkpoint_every_steps`` iterations, and whenever
      ``checkpoint_every_seconds`` passed since the last save (:meth:`saved` restarts the clock).
    """

    def __init__(self, cfg: TrainConfig, budgeted: bool):
        self.cfg, self.budgeted = cfg, budgeted
        self.last_save = time.perf_counter()

    def due(self, done: int, validated: bool, finished: bool) -> bool:
        """Whether to write last.pt now (``validated``: the run validated at this iteration;
        ``finished``: it was the last)."""
        if self.budgeted:
            return validated or self.timed(done)
        epoch, batch = divmod(done, self.cfg.steps_per_epoch)
        if batch == 0:
            return epoch % self.cfg.checkpoint_every == 0 or finished
        return self.timed(done)

    def timed(self, done: int) -> bool:
        """The mid-epoch rules: every ``checkpoint_every_steps`` iterations, and whenever
        ``checkpoint_every_seconds`` of training passed since the last save."""
        cfg = self.cfg
        every = cfg.checkpoint_every_steps
        by_steps = bool(every) and done % every == 0
        by_time = bool(cfg.checkpoint_every_seconds) and (
            time.perf_counter() - self.last_save >= cfg.checkpoint_every_seconds)
        return by_steps or by_time

    def saved(self) -> None:
        """last.pt was just written: the seconds rule counts from now."""
        self.last_save = time.perf_counter()


def _rng_states() -> dict:
    """Global random states (torch, CUDA, NumPy, Python) as tensors and lists (weights_only-safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": [version, list(internal), gauss_next],
    }


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"].cpu())
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
