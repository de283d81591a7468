"""What the training loop asks of a run's plan: the preset's epochs, or a budget (bench.train.budget).

The loop (``Trainer._fit``) is the same for both: a stream of epochs of ``steps_per_epoch``
seeded batches, losses read every ``sync_every`` iterations, mid-epoch checkpoints, Ctrl-C, and
resume; when last.pt is written is bench.train.checkpoint's ``PeriodicCheckpointer``. A plan
says, iteration by iteration:

- ``begin(optimizer)``: sets this iteration's learning rate if it owns it; returns the
  sampling schedule's step;
- ``end(seconds)``: the iteration is done (it took ``seconds`` of training);
- ``finished``; ``validation_due(history)``; ``entry(history, train_loss, val)``: the history
  entry a validation appends (``best_key`` names the entry's number that ``best_epoch`` takes);
- ``label()``, ``position()``: the progress bar's name, and where training is (the lines
  printed without a bar);
- ``stopped()``: where Ctrl-C or SIGTERM stopped it; ``state()``: what last.pt keeps to resume the plan;
  ``summary()``: what the result records (``TrainResult.budget``).

``done`` counts iterations from the start of training, resumed parts included.
"""
from __future__ import annotations

from ..config import TrainConfig
from ..runtime import distributed
from .budget import CHECKPOINT_FRACTIONS, BudgetPlan, checkpoint_iterations, cosine_lr
from .optim import ITERATION_SCHEDULES, current_lr, set_lr
from .sampling import sampling_eta


class EpochPlan:
    """``cfg.epochs`` x ``cfg.steps_per_epoch`` iterations: the lr scheduler stepped at each
    epoch's end (after each iteration for a per-iteration schedule, bench.train.optim
    ``ITERATION_SCHEDULES``), validation at each epoch's end."""

    best_key = "epoch"
    sync_each_iteration = False

    def __init__(self, cfg: TrainConfig, scheduler, done: int):
        self.cfg, self.scheduler, self.done = cfg, scheduler, done
        self.total = cfg.epochs * cfg.steps_per_epoch
        self.per_iteration = cfg.lr_schedule in ITERATION_SCHEDULES

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def label(self) -> str:
        return f"epoch {self.done // self.cfg.steps_per_epoch + 1}/{self.cfg.epochs}"

    def position(self) -> str:
        """Where training is, for a progress line: 'epoch 2/5' at an epoch's end, else
        'epoch 3/5, iteration 10/50'."""
        epoch, batch = divmod(self.done, self.cfg.steps_per_epoch)
        if batch == 0:
            return f"epoch {epoch}/{self.cfg.epochs}"
        return f"epoch {epoch + 1}/{self.cfg.epochs}, iteration {batch}/{self.cfg.steps_per_epoch}"

    def begin(self, optimizer) -> int:
        return self.done

    def end(self, seconds: float) -> None:
        self.done += 1
        if self.per_iteration or self._epoch_end():
            self.scheduler.step()

    def validation_due(self, history: list) -> bool:
        return self._epoch_end()

    def entry(self, history: list, train_loss: float, val: dict) -> dict:
        return {"epoch": self.done // self.cfg.steps_per_epoch, "train_loss": train_loss,
                "val_mse": val["mse"], "val_ssim": val["ssim"],
                "lr": current_lr(self.scheduler.optimizer)}

    def stopped(self, by: str = "") -> str:
        """Where training stopped (``by``: the signal, if named): e.g. ``stopped by SIGTERM at
        epoch 2, iteration 5 of 150``."""
        epoch, batch = divmod(self.done, self.cfg.steps_per_epoch)
        stopped = f"stopped by {by}" if by else "stopped"
        if batch:
            return f"{stopped} at epoch {epoch + 1}, iteration {batch} of {self.cfg.steps_per_epoch}"
        return f"{stopped} after epoch {epoch}"

    def state(self) -> None:
        return None

    def summary(self) -> None:
        return None

    def _epoch_end(self) -> bool:
        return self.done % self.cfg.steps_per_epoch == 0


class BudgetRun:
    """Training until ``plan`` is spent: the lr follows the budget's progress per iteration (the
    scheduler is not stepped), the sampling schedule is stretched to it, validation at its
    checkpoints (stamped with training FLOPs and seconds). A time budget counts training seconds
    only (validation and checkpoints left out), across interruptions; under DDP rank 0's count
    is every rank's, so the ranks stop together."""

    best_key = "checkpoint"

    def __init__(self, plan: BudgetPlan, cfg: TrainConfig, state: dict | None, parallel: bool):
        state = state or {}
        self.plan, self.cfg, self.parallel = plan, cfg, parallel
        self.done, self.train_s = state.get("iterations", 0), state.get("train_s", 0.0)
        self.finished = state.get("finished", False)
        self.progress = plan.progress(self.done, self.train_s)
        self.total = plan.iterations or plan.estimated_iterations
        self.fixed = checkpoint_iterations(plan) if plan.iterations else None
        # a time budget reads the loss every iteration: the seconds are then the device's, not
        # the host's queueing time
        self.sync_each_iteration = plan.kind == "time"

    def label(self) -> str:
        return f"budget {self.plan.kind}={self.plan.amount:g}"

    def position(self) -> str:
        """Where training is, for a progress line: the budget, the share spent, the iteration."""
        return f"{self.label()}, {self.progress:.0%} spent, iteration {self.done}"

    def begin(self, optimizer) -> float:
        spent = self.plan.progress(self.done, self.train_s)
        set_lr(optimizer, cosine_lr(spent, self.cfg))  # in place on a tensor rate (optim.set_lr)
        return self.plan.schedule_step(spent)

    def end(self, seconds: float) -> None:
        self.done += 1
        self.train_s += seconds
        if self.parallel and self.plan.kind == "time":
            self.train_s = distributed.broadcast(self.train_s)  # the ranks stop together
        self.progress = self.plan.progress(self.done, self.train_s)
        self.finished = self.progress >= 1.0

    def validation_due(self, history: list) -> bool:
        if self.fixed is not None:
            return len(history) < len(self.fixed) and self.done >= self.fixed[len(history)]
        last = history[-1]["fraction"] if history else 0.0
        return self.finished or any(last < f <= self.progress for f in CHECKPOINT_FRACTIONS)

    def entry(self, history: list, train_loss: float | None, val: dict) -> dict:
        plan, cfg, progress = self.plan, self.cfg, self.progress
        return {
            "checkpoint": len(history) + 1, "fraction": progress, "iteration": self.done,
            "epoch": self.done / cfg.steps_per_epoch,
            "train_flops": self._flops(), "train_s": self.train_s,
            "train_loss": train_loss, "val_mse": val["mse"], "val_ssim": val["ssim"],
            # the schedule's values after this iteration: at the budget, its end values
            "lr": cosine_lr(progress, cfg),
            "sampling_eta": sampling_eta(plan.schedule_step(progress), cfg),
        }

    def stopped(self, by: str = "") -> str:
        return (f"stopped{f' by {by}' if by else ''} at iteration {self.done} of budget "
                f"{self.plan.kind}={self.plan.amount:g}")

    def state(self) -> dict:
        return {"iterations": self.done, "train_s": self.train_s, "finished": self.finished}

    def summary(self) -> dict:
        return {**self.plan.as_dict(), "spent_iterations": self.done,
                "spent_train_s": self.train_s, "spent_flops": self._flops()}

    def _flops(self) -> float | None:
        per_iteration = self.plan.flops_per_iteration
        return self.done * per_iteration if per_iteration else None
