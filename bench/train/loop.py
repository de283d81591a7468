"""The shared training loop: one loop for every model; models own the math, the loop the schedule.

The loop composes what it needs: a plan (bench.train.plans: the preset's epochs or a budget),
checkpoints (bench.train.checkpoint: how they are written and read, and when one is due), the
optimizer and scheduler (bench.train.optim), stopping on a signal (bench.train.signals), and
the divergence check (bench.train.divergence). It keeps the progress lines and the timing of
iterations.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..config import TrainConfig
from ..evaluation.loop import evaluate
from ..runtime import distributed
from ..runtime.clock import duration
from ..runtime.compile import apply_fast_paths, compile_model
from ..runtime.device import to_device
from ..runtime.graphs import graph_fallback
from ..runtime.precision import autocast
from .budget import BudgetPlan
from .checkpoint import Checkpointer, PeriodicCheckpointer
from .divergence import DivergedError
from .graph import CapturedStep
from .loss import sequence_loss
from .optim import current_lr, make_optimizer, make_scheduler
from .plans import BudgetRun, EpochPlan
from .sampling import sampling_eta, static_mask, truth_mask
from .signals import Interrupted, StopOnSignal


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
    # its spread: the first and third quartiles over the timed stretches, and how many there were
    iteration_s_quartiles: list[float] | None = None
    timed_stretches: int = 0
    # a budgeted run (see bench.train.budget): the budget, its plan, and what was spent
    budget: dict | None = None
    # with cuda_graph asked for: "captured" (the iterations replayed a CUDA graph), or "eager: "
    # and why not (bench.runtime.graphs; a capture that failed); None when not asked for
    cuda_graph: str | None = None


def is_trainable(model: torch.nn.Module) -> bool:
    return any(p.requires_grad for p in model.parameters())


class Trainer:
    """Trains one model on one dataset; checkpoints every epoch (and every few minutes), keeps
    the best on validation, and stops cleanly on Ctrl-C.

    ``data_parallel``: under an initialised torch.distributed group, train with
    DistributedDataParallel on this rank's slice of each global batch (see bench.runtime.distributed);
    ``self.model`` stays the unwrapped model (checkpoints, evaluation), ``self.train_model`` is
    the one the training steps call.

    ``budget``: train until the budget is spent instead of for ``cfg.epochs`` (bench.train.budget: the
    schedule follows the fraction of the budget spent; validation at budget checkpoints). One
    loop serves both; a plan (bench.train.plans) owns what differs.

    ``hook``: an experiment tracker's (bench.track.cell.CellTracker, or None): ``begin(done)``
    once, ``losses(first, values, scalars)`` at each host read of the losses (this rank's),
    ``validated(step, entry, examples)`` at each validation with ``hook.examples`` clips; steps
    count the iterations done.
    """

    def __init__(self, model, data, cfg: TrainConfig, device, seed: int, checkpoint_dir: Path,
                 name: str = "model", log=print, data_parallel: bool = False,
                 budget: BudgetPlan | None = None, hook=None):
        self.model, self.data, self.cfg = model.to(device), data, cfg
        self.budget, self.hook = budget, hook
        self.device, self.seed, self.name, self.log = device, seed, name, log
        self.checkpoint_dir = Path(checkpoint_dir)
        # --- data parallelism (the identity for one process) ---
        self.parallel = data_parallel and distributed.is_distributed()
        self.world = distributed.world_size() if self.parallel else 1
        if self.parallel:
            distributed.check_batch(cfg.batch_size)
        # --- the captured iteration (bench.train.graph), where the configuration allows it ---
        graph_off = graph_fallback(device, cfg, self.parallel) if cfg.cuda_graph else None
        if graph_off is None and cfg.cuda_graph and not is_trainable(self.model):
            graph_off = "the model has no trainable parameters"
        self.optimizer = make_optimizer(model, cfg, tensor_lr=cfg.cuda_graph and graph_off is None)
        self.scheduler = make_scheduler(self.optimizer, cfg)
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
        # Once per cell, on the model itself, so evaluation runs them too; the fast paths first,
        # so that a compiled step traces them. ``fast_paths``: those that applied.
        self.fast_paths = apply_fast_paths(self.model, cfg)
        if cfg.compile:  # the compiled step serves training and evaluation
            compile_model(self.model, cfg.compile_mode)
        self.train_model = distributed.wrap(self.model, device) if self.parallel else self.model
        self.loss_scale = distributed.loss_scale(cfg.loss) if self.parallel else 1
        self.checkpointer = Checkpointer(
            self.checkpoint_dir, device, {"model": self.model, "optimizer": self.optimizer,
                                          "scheduler": self.scheduler, "scaler": self.scaler},
            log=log, parallel=self.parallel)
        self.captured, self.graph_off = None, graph_off
        if cfg.cuda_graph and graph_off is not None:
            log(f"   {name}: cuda_graph off, eager steps: {graph_off}")
        elif cfg.cuda_graph:
            self.captured = CapturedStep(self._passes, self.model, self.optimizer, log=log)

    def training_step(self, frames: torch.Tensor, step: int, generator: torch.Generator,
                      mask: torch.Tensor | None = None):
        """One iteration of the protocol: a step on the clips, then (optionally) on them reversed;
        replayed from a CUDA graph where ``cfg.cuda_graph`` and the configuration allow it.

        Returns the mean loss of the passes as a device tensor: reading it would make the host
        wait for the device, so the loop reads losses only every ``sync_every`` iterations.
        ``mask``: a scheduled-sampling mask to use instead of drawing one (bench.verify replays
        a recorded iteration with it).
        """
        cfg, data = self.cfg, self.data
        # One scheduled-sampling draw per iteration, shared by the reversed pass (as the authors'
        # trainer does: the same real_input_flag for both).
        # Under DDP: the global batch's mask, sliced like the batch (N ranks draw as one process).
        if mask is None:
            mask = self._rows(truth_mask(step, cfg, frames.shape[0] * self.world, data.in_len,
                                         data.out_len, generator, self.device))
        if self.captured is not None:
            mask = static_mask(mask, frames.shape[0], data.out_len, self.device)
            return self.captured(frames, mask)
        return self._passes(frames, mask)

    def _passes(self, frames: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The iteration's passes (forward, loss, backward, optimizer step each); the mean loss."""
        cfg, data = self.cfg, self.data
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
            total = total + loss.detach() * self.loss_scale  # averaged over ranks later
        return total / len(passes)

    def _rows(self, batch: torch.Tensor | None) -> torch.Tensor | None:
        """This rank's rows of a global batch (or mask); all of them for one process."""
        return distributed.rank_rows(batch) if self.parallel else batch

    def fit(self, progress: bool = True) -> TrainResult:
        """Trains from the last checkpoint (if any); an error carries ``failed_step``."""
        self.step = None  # the iteration being run, for error reports
        try:
            with StopOnSignal() as self._stop:
                return self._fit(progress)
        except Exception as error:
            error.failed_step = self.step
            raise

    def _fit(self, progress: bool) -> TrainResult:
        """The loop: epochs of ``steps_per_epoch`` seeded batches until the plan is finished
        (``cfg.epochs`` of them, or as many as the budget takes); the plan sets the schedule and
        says when to validate and what to record, the periodic checkpointer when to save."""
        cfg, result = self.cfg, TrainResult()
        epoch, first, resumed = self._resume(result)
        plan = self._plan(epoch * cfg.steps_per_epoch + first, resumed)
        if self.hook is not None:
            self.hook.begin(plan.done)
        window = list(resumed["losses"]) if resumed is not None else []  # since last validation
        started = time.perf_counter() - result.wall_s  # wall time of earlier parts included
        self.periodic = PeriodicCheckpointer(cfg, budgeted=self.budget is not None)
        chunks, pending = TimingChunks(), []  # losses carry over an epoch's end until read
        bar = tqdm(total=plan.total, initial=plan.done, leave=False, dynamic_ncols=True,
                   desc=f"{self.name} {plan.label()}",
                   disable=not progress or not distributed.is_main())
        lines = _ProgressLines(f"{self.name} seed {self.seed}", plan, self.log,
                               enabled=not progress and distributed.is_main())
        while not plan.finished:
            self.train_model.train()
            batches, generator = self._stream(epoch, first, resumed)
            bar.set_description(f"{self.name} {plan.label()}", refresh=False)
            for i in range(first, cfg.steps_per_epoch):
                self.step, began = plan.done, time.perf_counter()
                schedule_step = plan.begin(self.optimizer)
                self.schedule_step = schedule_step  # for the tracker's sampling ratio
                frames = to_device(self._rows(next(batches)), self.device)
                pending.append(self.training_step(frames, schedule_step, generator))
                if plan.sync_each_iteration or len(pending) >= cfg.sync_every:
                    self._sync(pending, window, bar, chunks)
                plan.end(time.perf_counter() - began)
                validated = plan.validation_due(result.history)
                if validated:
                    self._sync(pending, window, bar, chunks)
                    self._validate(result, window, epoch, plan)
                    window = []
                lines.update(plan, validated, result.history, window)
                stop = self._stop_requested()  # once: a checkpoint always precedes Interrupted
                saved = self.periodic.due(plan.done, validated, plan.finished) or stop
                if saved:
                    self._sync(pending, window, bar, chunks)
                    self._save("last.pt", epoch, result, batch=(i + 1) % cfg.steps_per_epoch,
                               losses=window, generator=generator,
                               elapsed=time.perf_counter() - started, budget_state=plan.state())
                if validated or saved:
                    chunks.restart()  # validation and checkpoints are no iteration's time
                if plan.finished:
                    break
                if stop:
                    raise Interrupted(f"{self.name} seed {self.seed} {plan.stopped(self._stop.by)}"
                                      f"; checkpoint saved: {self.checkpoint_dir / 'last.pt'}",
                                      self._stop.signum)
            epoch, first = epoch + 1, 0
        bar.close()
        self._finish(result, plan, started, chunks)
        return result

    def _plan(self, done: int, resumed: dict | None):
        """The run's plan: the budget's (resumed from the checkpoint's budget state), or the
        preset's epochs; ``done``: the iterations already trained."""
        if self.budget:
            return BudgetRun(self.budget, self.cfg, (resumed or {}).get("budget"), self.parallel)
        return EpochPlan(self.cfg, self.scheduler, done)

    def _finish(self, result: TrainResult, plan, started: float, chunks: TimingChunks) -> None:
        """What the finished loop records; then the best weights are loaded (best.pt)."""
        self.step = None
        result.steps = plan.done * (2 if self.cfg.reverse_pass else 1)  # optimizer steps
        result.wall_s = time.perf_counter() - started
        result.iteration_s = chunks.median()
        result.iteration_s_quartiles, result.timed_stretches = chunks.quartiles(), len(chunks.times)
        result.budget = plan.summary()
        result.cuda_graph = self.graph_status()
        self.checkpointer.load_best()
        self._recapture()  # the best weights were loaded: the training graph is done with

    def graph_status(self) -> str | None:
        """What ``TrainResult.cuda_graph`` records: "captured", "eager: <why>", or None."""
        if not self.cfg.cuda_graph:
            return None
        if self.captured is None:
            return f"eager: {self.graph_off}"
        failed = self.captured.failed
        return f"eager: capture failed: {failed}" if failed else "captured"

    def _recapture(self) -> None:
        """After the model's or optimizer's state was loaded: the next captured step captures anew."""
        if self.captured is not None:
            self.captured.invalidate()

    def _stream(self, epoch: int, first: int, resumed: dict | None):
        """The epoch's batches and mask generator, seeded per epoch so that a resumed run sees
        the same stream; from iteration ``first`` > 0 (mid-epoch) with the mask draws restored."""
        batches = self.data.train_batches(self.cfg.batch_size, seed=self.seed * 100_003 + epoch)
        generator = torch.Generator().manual_seed(self.seed * 100_019 + epoch)
        if first:
            for _ in range(first):
                next(batches)
            generator.set_state(resumed["generator"])
        return batches, generator

    def _validate(self, result: TrainResult, window: list, epoch: int, plan) -> None:
        """Validation: the plan's history entry (train_loss: the mean since the last one)."""
        self.step = None  # not a training iteration's failure
        shown = self.hook.examples if self.hook is not None else 0
        out = evaluate(self.model, self.data.val, self.data.in_len, self.data.out_len, self.device,
                       self.cfg.eval_batch_size, self.cfg.amp, keep_examples=shown, openstl=False)
        val = out["headline"]
        self.train_model.train()
        train_loss = self._mean_over_ranks(sum(window) / len(window)) if window else None
        result.history.append(plan.entry(result.history, train_loss, val))
        if self.hook is not None:
            self.hook.validated(plan.done, result.history[-1], out.get("examples"))
        if result.best_val_mse is None or val["mse"] < result.best_val_mse:
            result.best_val_mse = val["mse"]
            result.best_epoch = result.history[-1][plan.best_key]
            self._save("best.pt", epoch, result)

    def _sync(self, pending: list, losses: list, bar, chunks: TimingChunks) -> None:
        """Reads the pending losses (if any) into ``losses`` and times the stretch they took."""
        if pending:
            count, timed = len(pending), len(chunks.times)
            self._read_losses(pending, losses, bar)
            chunks.read(count)
            pending.clear()
            if self.hook is not None:
                self._track(losses[-count:], chunks.times[timed:])

    def _track(self, values: list[float], timed: list[float]) -> None:
        """The hook's scalars of a host read: its losses, the learning rate and sampling ratio
        now, and the throughput of the stretch it timed (none for a process's first)."""
        scalars = {"train/lr": current_lr(self.optimizer),
                   "train/sampling_eta": sampling_eta(self.schedule_step, self.cfg)}
        if timed:
            scalars["train/iterations_per_s"] = 1.0 / timed[-1]
            scalars["train/samples_per_s"] = self.cfg.batch_size / timed[-1]
        self.hook.losses(self.step + 2 - len(values), values, scalars)

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
        progress = {
            "epoch": epoch + 1 if batch == 0 else epoch,
            "batch": batch,
            "losses": list(losses or []),
            "generator": generator.get_state() if generator is not None and batch else None,
            "history": result.history,
            "best": [result.best_epoch, result.best_val_mse],
            "elapsed_s": result.wall_s if elapsed is None else elapsed,
            "parts": result.parts,
            "budget": budget_state,
        }
        if self.checkpointer.save(name, progress) and name == "last.pt":
            self.periodic.saved()

    def _resume(self, result: TrainResult) -> tuple[int, int, dict | None]:
        """(epoch, iteration within it, checkpoint) to start from; (0, 0, None) when fresh."""
        # last.pt, or if it is damaged (moved aside) best.pt, an epoch-end checkpoint too (not
        # under a budget: it lacks the budget's state); neither: train from scratch
        path, state = self.checkpointer.latest(("last.pt",) if self.budget else ("last.pt", "best.pt"))
        if state is None:
            return 0, 0, None
        self.checkpointer.restore(state)
        self._recapture()  # the graph recorded the state before the restore
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
        return state["epoch"], batch, state

    def _stop_requested(self) -> bool:
        """Whether a signal asked to stop, on this rank or (under DDP) any: every rank then
        stops at the same iteration, and rank 0 checkpoints it even if another rank alone got
        the signal (torchrun and SLURM may signal one process or all of them)."""
        if self.parallel:
            self._stop.signum = distributed.max_over_ranks(self._stop.signum)
        return bool(self._stop.signum)

    def _mean_over_ranks(self, value: float) -> float:
        return distributed.all_mean(value) if self.parallel else value


class _ProgressLines:
    """Without a progress bar (``--no-progress``, e.g. a cluster job's log): one line at each
    validation and at each tenth of the run's iterations, with the training loss (the mean read
    since the last validation; the loop reads it every ``sync_every`` iterations, so a line may
    have none yet), the rate of this process (validation included) and the time left at it::

        convlstm seed 0: epoch 2/5, loss 0.0123, 2.31 it/s, ETA 1m12s
    """

    SHARE = 0.1  # a line at least every tenth of the run, however rarely it validates

    def __init__(self, prefix: str, plan, log, enabled: bool):
        self.prefix, self.log, self.enabled = prefix, log, enabled
        self.first, self.started = plan.done, time.perf_counter()
        self.every = max(1, round((plan.total or 0) * self.SHARE))
        self.next = plan.done + self.every

    def update(self, plan, validated: bool, history: list[dict], window: list[float]) -> None:
        """After an iteration: a line when the run validated (its loss: the validation's entry
        in ``history``) or passed its next tenth (the mean of the losses read since, ``window``;
        summed only when a line is printed)."""
        if not self.enabled or not (validated or plan.done >= self.next):
            return
        loss = history[-1]["train_loss"] if validated else \
            (sum(window) / len(window) if window else None)
        self.next = plan.done + self.every
        seconds = time.perf_counter() - self.started
        rate = (plan.done - self.first) / seconds if seconds > 0 else 0.0
        left = max(0, (plan.total or plan.done) - plan.done)
        eta = f"ETA {duration(left / rate)}" if rate > 0 and not plan.finished else "done"
        shown = f", loss {loss:.4g}" if loss is not None else ""  # none read yet (sync_every)
        self.log(f"   {self.prefix}: {plan.position()}{shown}, {rate:.3g} it/s, {eta}")


class TimingChunks:
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

    def quartiles(self) -> list[float] | None:
        """[first, third] quartile of the stretches' seconds per iteration (one stretch: both
        are its value); None when nothing was timed."""
        if len(self.times) < 2:
            return self.times * 2 or None
        q1, _, q3 = statistics.quantiles(self.times, n=4, method="inclusive")
        return [q1, q3]
