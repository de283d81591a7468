"""The shared training loop: one loop for every model; models own the math, the loop the schedule."""
from __future__ import annotations

import math
import os
import random
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import distributed
from .acceleration import compile_model
from .budget import CHECKPOINT_FRACTIONS, BudgetPlan, checkpoint_iterations, cosine_lr
from .config import TrainConfig
from .evaluate import evaluate
from .precision import autocast, to_device
from .schedule import sampling_eta, sequence_loss, truth_mask


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped training at an iteration boundary, after a checkpoint was written."""


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    steps: int = 0  # optimizer steps
    best_epoch: int | None = None
    best_val_mse: float | None = None
    resumed_from_epoch: int | None = None
    resumed_from_step: int | None = None  # iteration a resumed run started from (mid-epoch too)
    wall_s: float = 0.0  # training (with validation), summed over every part of a resumed run
    parts: int = 1  # processes the training ran in (1 + the number of resumptions)
    earlier_parts_s: float = 0.0  # of wall_s, the time spent in earlier (interrupted) processes
    iteration_s: float | None = None  # median seconds per training iteration, as the loop ran
    # a budgeted run (see bench.budget): the budget, its plan, and what was spent
    budget: dict | None = None


def is_trainable(model: torch.nn.Module) -> bool:
    return any(p.requires_grad for p in model.parameters())


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    # The fused CUDA kernel updates every parameter in a few launches instead of several each.
    fused = {"fused": True} if params and all(p.is_cuda for p in params) else {}
    kinds = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
    if cfg.optimizer in kinds:
        return kinds[cfg.optimizer](params, lr=cfg.lr, betas=cfg.betas,
                                    weight_decay=cfg.weight_decay, **fused)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; accepted: adamw, adam")


def make_scheduler(optimizer, cfg: TrainConfig):
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=cfg.epochs, eta_min=cfg.min_lr
        )
    if cfg.lr_schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}; accepted: cosine, constant")


class Trainer:
    """Trains one model on one dataset; checkpoints every epoch (and every few minutes), keeps
    the best on validation, and stops cleanly on Ctrl-C.

    ``data_parallel``: under an initialised torch.distributed group, train with
    DistributedDataParallel on this rank's slice of each global batch (see bench.distributed);
    ``self.model`` stays the unwrapped model (checkpoints, evaluation), ``self.train_model`` is
    the one the training steps call.

    ``budget``: train until the budget is spent instead of for ``cfg.epochs`` (bench.budget: the
    schedule follows the fraction of the budget spent; validation at budget checkpoints).
    """

    def __init__(self, model, data, cfg: TrainConfig, device, seed: int, checkpoint_dir: Path,
                 name: str = "model", log=print, data_parallel: bool = False,
                 budget: BudgetPlan | None = None):
        self.model, self.data, self.cfg = model.to(device), data, cfg
        self.budget = budget
        self.device, self.seed, self.name, self.log = device, seed, name, log
        self.checkpoint_dir = Path(checkpoint_dir)
        self.optimizer = make_optimizer(model, cfg)
        self.scheduler = make_scheduler(self.optimizer, cfg)
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
        if cfg.compile:  # once per cell: the compiled step serves training and evaluation
            compile_model(self.model, cfg.compile_mode)
        # --- data parallelism (the identity for one process) ---
        self.parallel = data_parallel and distributed.is_distributed()
        self.world = distributed.world_size() if self.parallel else 1
        if self.parallel:
            distributed.check_batch(cfg.batch_size)
        self.train_model = distributed.wrap(self.model, device) if self.parallel else self.model
        self.loss_scale = distributed.loss_scale(cfg.loss) if self.parallel else 1

    def training_step(self, frames: torch.Tensor, step: int, generator: torch.Generator):
        """One iteration of the protocol: a step on the clips, then (optionally) on them reversed.

        Returns the mean loss of the passes as a device tensor: reading it would make the host
        wait for the device, so the loop reads losses only every ``sync_every`` iterations.
        """
        cfg, data = self.cfg, self.data
        # One scheduled-sampling draw per iteration, shared by the reversed pass (as the authors'
        # trainer does: the same real_input_flag for both).
        # Under DDP: the global batch's mask, sliced like the batch (N ranks draw as one process).
        mask = self._rows(truth_mask(step, cfg, frames.shape[0] * self.world, data.in_len,
                                     data.out_len, generator, self.device))
        passes = [frames, frames.flip(1)] if cfg.reverse_pass else [frames]
        total = 0.0
        for clip in passes:
            with autocast(self.device, cfg.amp):
                pred = self.train_model(clip, data.in_len, data.out_len, mask)
                loss = sequence_loss(pred, clip, data.in_len, cfg)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss * self.loss_scale).backward()
            if cfg.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total = total + loss.detach().float() * self.loss_scale  # averaged over ranks later
        return total / len(passes)

    def _rows(self, batch: torch.Tensor | None) -> torch.Tensor | None:
        """This rank's rows of a global batch (or mask); all of them for one process."""
        return distributed.rank_rows(batch) if self.parallel else batch

    def fit(self, progress: bool = True) -> TrainResult:
        """Trains from the last checkpoint (if any); an error carries ``failed_step``."""
        self.step = None  # the iteration being run, for error reports
        try:
            with _StopOnCtrlC() as self._stop:
                return self._fit_budget(progress) if self.budget else self._fit(progress)
        except Exception as error:
            error.failed_step = self.step
            raise

    def _fit(self, progress: bool) -> TrainResult:
        cfg, result = self.cfg, TrainResult()
        start_epoch, start_batch, resumed = self._resume(result)
        started = time.perf_counter() - result.wall_s  # wall time of earlier parts included
        self._last_save = time.perf_counter()
        chunks = _Chunks()
        for epoch in range(start_epoch, cfg.epochs):
            self.train_model.train()
            # Data and sampling draws are seeded per epoch, so a resumed run sees the same stream.
            batches = self.data.train_batches(cfg.batch_size, seed=self.seed * 100_003 + epoch)
            generator = torch.Generator().manual_seed(self.seed * 100_019 + epoch)
            first, losses = 0, []
            if resumed is not None and epoch == start_epoch and start_batch:
                # Mid-epoch: skip the batches already trained on; restore the mask draws.
                for _ in range(start_batch):
                    next(batches)
                generator.set_state(resumed["generator"])
                first, losses = start_batch, list(resumed["losses"])
            bar = tqdm(total=cfg.steps_per_epoch, initial=first,
                       disable=not progress or not distributed.is_main(),
                       desc=f"{self.name} epoch {epoch + 1}/{cfg.epochs}", leave=False,
                       dynamic_ncols=True)
            pending = []
            chunks.restart()
            for i in range(first, cfg.steps_per_epoch):
                self.step = epoch * cfg.steps_per_epoch + i
                frames = to_device(self._rows(next(batches)), self.device)
                pending.append(self.training_step(frames, self.step, generator))
                last = i + 1 == cfg.steps_per_epoch
                save = not last and self._checkpoint_due(i)
                if last or save or self._stop.requested or len(pending) >= cfg.sync_every:
                    self._sync(pending, losses, bar, chunks)
                if save or (self._stop.requested and not last):
                    self._save("last.pt", epoch, result, batch=i + 1, losses=losses,
                               generator=generator, elapsed=time.perf_counter() - started)
                    chunks.restart()
                if self._stop.requested and not last:
                    raise Interrupted(f"{self.name} seed {self.seed} stopped at epoch {epoch + 1}, "
                                      f"iteration {i + 1} of {cfg.steps_per_epoch}; checkpoint "
                                      "saved")
            bar.close()
            self.step = None
            self.scheduler.step()
            val = evaluate(self.model, self.data.val, self.data.in_len, self.data.out_len,
                           self.device, cfg.eval_batch_size, cfg.amp)["headline"]
            result.history.append({
                "epoch": epoch + 1,
                "train_loss": self._mean_over_ranks(sum(losses) / len(losses)),
                "val_mse": val["mse"], "val_ssim": val["ssim"],
                "lr": self.optimizer.param_groups[0]["lr"],
            })
            if result.best_val_mse is None or val["mse"] < result.best_val_mse:
                result.best_val_mse, result.best_epoch = val["mse"], epoch + 1
                self._save("best.pt", epoch, result)
            elapsed = time.perf_counter() - started
            if ((epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs
                    or self._stop.requested):
                self._save("last.pt", epoch, result, elapsed=elapsed)
            if self._stop.requested and epoch + 1 < cfg.epochs:
                raise Interrupted(f"{self.name} seed {self.seed} stopped after epoch {epoch + 1}; "
                                  "checkpoint saved")
        result.steps = cfg.epochs * cfg.steps_per_epoch * (2 if cfg.reverse_pass else 1)
        result.wall_s = time.perf_counter() - started
        result.iteration_s = chunks.median()
        self._load_best()
        return result

    def _fit_budget(self, progress: bool) -> TrainResult:
        """Trains until the budget is spent; the data stream is the unbudgeted one (epochs of
        ``steps_per_epoch`` seeded batches), the schedule follows the budget's progress, and
        validation runs at its checkpoints (each stamped with training FLOPs and seconds)."""
        cfg, plan, result = self.cfg, self.budget, TrainResult()
        start_epoch, start_batch, resumed = self._resume(result)
        state = (resumed or {}).get("budget") or {}
        done, train_s = state.get("iterations", 0), state.get("train_s", 0.0)
        finished = state.get("finished", False)
        window = list(resumed["losses"]) if resumed is not None else []  # since last validation
        fixed = checkpoint_iterations(plan) if plan.iterations else None
        started = time.perf_counter() - result.wall_s
        self._last_save = time.perf_counter()
        chunks, pending = _Chunks(), []  # losses carry over an epoch's end until read
        bar = tqdm(total=plan.iterations or plan.estimated_iterations, initial=done,
                   disable=not progress or not distributed.is_main(),
                   desc=f"{self.name} budget {plan.kind}={plan.amount:g}", leave=False,
                   dynamic_ncols=True)
        epoch = start_epoch
        while not finished:
            self.train_model.train()
            batches = self.data.train_batches(cfg.batch_size, seed=self.seed * 100_003 + epoch)
            generator = torch.Generator().manual_seed(self.seed * 100_019 + epoch)
            first = 0
            if resumed is not None and epoch == start_epoch and start_batch:
                for _ in range(start_batch):
                    next(batches)
                generator.set_state(resumed["generator"])
                first = start_batch
            for i in range(first, cfg.steps_per_epoch):
                began = time.perf_counter()
                self.step, spent_before = done, plan.progress(done, train_s)
                for group in self.optimizer.param_groups:
                    group["lr"] = cosine_lr(spent_before, cfg)
                frames = to_device(self._rows(next(batches)), self.device)
                pending.append(self.training_step(frames, plan.schedule_step(spent_before),
                                                  generator))
                done += 1
                if plan.kind == "time" or len(pending) >= cfg.sync_every:
                    # a time budget reads the loss every iteration: the seconds are then the
                    # device's, not the host's queueing time
                    self._sync(pending, window, bar, chunks)
                train_s += time.perf_counter() - began
                if self.parallel and plan.kind == "time":
                    train_s = distributed.broadcast(train_s)  # the ranks stop together
                now = plan.progress(done, train_s)
                finished = now >= 1.0
                if fixed is not None:
                    due = len(result.history) < len(fixed) and done >= fixed[len(result.history)]
                else:
                    due = finished or any(f <= now for f in CHECKPOINT_FRACTIONS
                                          if f > (result.history[-1]["fraction"]
                                                  if result.history else 0.0))
                at = (epoch, 0) if i + 1 == cfg.steps_per_epoch else (epoch, i + 1)
                save = due or self._checkpoint_due(i) or self._stop.requested
                if save:
                    self._sync(pending, window, bar, chunks)
                if due:
                    self.step = None
                    self._validate_at_checkpoint(result, window, done, train_s, now, epoch)
                    window = []
                if save:
                    self._save("last.pt", at[0], result, batch=at[1], losses=window,
                               generator=generator, elapsed=time.perf_counter() - started,
                               budget_state={"iterations": done, "train_s": train_s,
                                             "finished": finished})
                    chunks.restart()  # validation and checkpoints are no iteration's time
                if finished:
                    break
                if self._stop.requested:
                    raise Interrupted(f"{self.name} seed {self.seed} stopped at iteration {done} "
                                      f"of budget {plan.kind}={plan.amount:g}; checkpoint saved")
            epoch += 1
        bar.close()
        self.step = None
        passes = 2 if cfg.reverse_pass else 1
        result.steps = done * passes
        result.wall_s = time.perf_counter() - started
        result.iteration_s = chunks.median()
        result.budget = {**plan.as_dict(), "spent_iterations": done, "spent_train_s": train_s,
                         "spent_flops": (done * plan.flops_per_iteration
                                         if plan.flops_per_iteration else None)}
        self._load_best()
        return result

    def _validate_at_checkpoint(self, result: TrainResult, window: list, done: int,
                                train_s: float, progress: float, epoch: int) -> None:
        """One budget checkpoint: validation, stamped with cumulative training compute."""
        cfg, plan = self.cfg, self.budget
        val = evaluate(self.model, self.data.val, self.data.in_len, self.data.out_len,
                       self.device, cfg.eval_batch_size, cfg.amp)["headline"]
        self.train_model.train()
        checkpoint = len(result.history) + 1
        result.history.append({
            "checkpoint": checkpoint, "fraction": progress, "iteration": done,
            "epoch": done / cfg.steps_per_epoch,
            "train_flops": done * plan.flops_per_iteration if plan.flops_per_iteration else None,
            "train_s": train_s,
            "train_loss": self._mean_over_ranks(sum(window) / len(window)) if window else None,
            "val_mse": val["mse"], "val_ssim": val["ssim"],
            # the schedule's values after this iteration: at the budget, its end values
            "lr": cosine_lr(progress, cfg),
            "sampling_eta": sampling_eta(plan.schedule_step(progress), cfg),
        })
        if result.best_val_mse is None or val["mse"] < result.best_val_mse:
            result.best_val_mse, result.best_epoch = val["mse"], checkpoint
            self._save("best.pt", epoch, result)

    def _checkpoint_due(self, i: int) -> bool:
        """Mid-epoch checkpoints: every ``checkpoint_every_steps`` iterations, and whenever
        ``checkpoint_every_seconds`` of training passed since the last save."""
        cfg = self.cfg
        every = cfg.checkpoint_every_steps
        by_steps = bool(every) and (self.step + 1) % every == 0
        by_time = bool(cfg.checkpoint_every_seconds) and (
            time.perf_counter() - self._last_save >= cfg.checkpoint_every_seconds)
        return by_steps or by_time

    def _sync(self, pending: list, losses: list, bar, chunks: _Chunks) -> None:
        """Reads the pending losses (if any) into ``losses`` and times the stretch they took."""
        if pending:
            self._read_losses(pending, losses, bar)
            chunks.read(len(pending))
            pending.clear()

    def _read_losses(self, pending: list, losses: list, bar) -> None:
        """Reads the pending device losses on the host (one wait for the device), checks them."""
        if not pending:
            return
        values = torch.stack(pending).tolist()
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                self.step = self.step - len(values) + 1 + offset
                raise DivergedError(f"non-finite training loss ({value}) at step {self.step}")
        losses.extend(values)
        bar.update(len(values))
        bar.set_postfix(loss=f"{values[-1]:.4g}")

    def _save(self, name: str, epoch: int, result: TrainResult, batch: int = 0,
              losses: list | None = None, generator: torch.Generator | None = None,
              elapsed: float | None = None, budget_state: dict | None = None) -> None:
        """At an epoch end (``batch`` 0: resume at the next epoch) or mid-epoch (resume at
        iteration ``batch`` of ``epoch`` with the mask generator's state and the losses so far).

        Under DDP rank 0 alone writes (its own losses: the ranks do not agree on when a timed
        checkpoint is due, so no collective can happen here); the others read after a barrier.
        """
        if not distributed.is_main():
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch + 1 if batch == 0 else epoch,
            "batch": batch,
            "losses": list(losses or []),
            "generator": generator.get_state() if generator is not None and batch else None,
            "rng": _rng_states(),
            "history": result.history,
            "best": [result.best_epoch, result.best_val_mse],
            "elapsed_s": result.wall_s if elapsed is None else elapsed,
            "parts": result.parts,
            "budget": budget_state,
        }
        tmp = self.checkpoint_dir / f".{name}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_dir / name)  # atomic: a crash never leaves half a file
        if name == "last.pt":
            self._last_save = time.perf_counter()

    def _resume(self, result: TrainResult) -> tuple[int, int, dict | None]:
        """(epoch, iteration within it, checkpoint) to start from; (0, 0, None) when fresh."""
        path = self.checkpoint_dir / "last.pt"
        if not path.exists():
            return 0, 0, None
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        result.history = list(state["history"])
        result.best_epoch, result.best_val_mse = state["best"]
        batch = state.get("batch", 0)
        result.resumed_from_epoch = state["epoch"]
        result.resumed_from_step = state["epoch"] * self.cfg.steps_per_epoch + batch
        result.wall_s = result.earlier_parts_s = state.get("elapsed_s", 0.0)
        result.parts = state.get("parts", 1) + 1
        budget = state.get("budget")  # a budget's stream may run past the preset's epochs
        if not (budget["finished"] if budget else state["epoch"] >= self.cfg.epochs):
            self.log(f"   resuming {self.name} seed {self.seed} from epoch {state['epoch'] + 1}, "
                     f"iteration {batch} ({path})")
        if state.get("rng") is not None:
            _set_rng_states(state["rng"])
        if state.get("generator") is not None:
            state["generator"] = state["generator"].cpu()
        return state["epoch"], batch, state

    def _mean_over_ranks(self, value: float) -> float:
        return distributed.all_mean(value) if self.parallel else value

    def _load_best(self) -> None:
        if self.parallel:
            distributed.barrier()  # best.pt is written by rank 0
        path = self.checkpoint_dir / "best.pt"
        if path.exists():
            state = torch.load(path, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state["model"])


class _Chunks:
    """Seconds per training iteration over each stretch between loss reads (validation and
    checkpoints left out); the first stretch of a process holds the warm-up (allocator, cuDNN
    autotuning, compiling) and is left out too."""

    def __init__(self):
        self.times, self.warm, self.start = [], False, time.perf_counter()

    def read(self, iterations: int) -> None:
        if self.warm:
            self.times.append((time.perf_counter() - self.start) / iterations)
        self.warm = True
        self.restart()

    def restart(self) -> None:
        self.start = time.perf_counter()

    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


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


class _StopOnCtrlC:
    """While training: the first Ctrl-C asks the loop to stop at the end of the iteration (it
    checkpoints, then raises :class:`Interrupted`); a second one interrupts at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._request)
        return self

    def _request(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
