"""Training budgets: the same training compute for every model (``--budget flops|time|steps=N``).

A budget fixes what every model may spend on training: FLOPs (the flop counter's count of one
iteration of the configured protocol, ``cost["train_flops_per_seq"]`` x batch), seconds of
training on this device (validation and checkpoints not counted), or iterations.

How the schedule is laid out: a budgeted run's learning rate and scheduled-sampling ramp are
functions of ``progress``, the fraction of the budget spent (0 -> 1), so every model completes
its schedule exactly when its budget is spent.

- flops / steps: the iteration count is fixed before training (``iterations = budget //
  flops per iteration``, or the steps), so progress = iteration / iterations: deterministic, and
  a resumed run ends exactly where an uninterrupted one does.
- time: the iteration count is not known in advance (it is estimated from the measured
  throughput, for the printed estimate only); progress = training seconds spent / budget, so the
  schedule ends at the budget whatever the speed turns out to be. Not reproducible to the bit.

Learning rate: cosine from ``lr`` to ``min_lr`` over progress (per iteration; ``constant``
stays constant). Sampling: the preset's own ramp, stretched to the budget: iteration ``i`` uses
the schedule position ``progress x (preset epochs x steps_per_epoch)``, so linear sampling's eta
and reverse sampling's phases fall at the same fractions of training as in the preset.

Validation runs at ``CHECKPOINT_FRACTIONS`` of the budget (log-spaced, the last at the budget),
each stamped with cumulative training FLOPs and seconds, so curves share an x axis.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..config import TrainConfig

KINDS = {"flops": "training FLOPs", "time": "seconds of training", "steps": "iterations"}
# 9 fractions, 1/256 ... 1 (a factor of 2 apart)
CHECKPOINT_FRACTIONS = tuple(2.0 ** -k for k in range(8, -1, -1))


@dataclass(frozen=True)
class Budget:
    kind: str  # flops | time | steps
    amount: float

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.kind}={self.amount:g}"


def parse_budget(text: str) -> Budget:
    """``flops=1e12``, ``time=600`` (seconds) or ``steps=500``; anything else is a clear error."""
    kind, sep, raw = text.partition("=")
    accepted = ("accepted: flops=<N> (training FLOPs, e.g. flops=2e12), time=<seconds> "
                "(e.g. time=600), steps=<N> (iterations, e.g. steps=500)")
    if not sep or kind.strip() not in KINDS:
        raise ValueError(f"--budget {text!r}: unknown budget; {accepted}")
    kind = kind.strip()
    try:
        amount = float(raw)
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount <= 0:
        raise ValueError(f"--budget {text!r}: {raw!r} is not a positive number; {accepted}")
    if kind == "steps" and amount != int(amount):
        raise ValueError(f"--budget {text!r}: steps must be a whole number; {accepted}")
    return Budget(kind, int(amount) if kind in ("steps", "flops") and amount == int(amount)
                  else amount)


@dataclass
class BudgetPlan:
    """A budget laid out for one model: what one iteration costs, how many iterations (fixed for
    flops/steps; an estimate for time), and the preset's schedule length it stretches."""

    kind: str
    amount: float
    flops_per_iteration: float | None  # None where the flop count is unknown (time/steps only)
    iterations: int | None  # fixed count (flops, steps); None for a time budget
    estimated_iterations: int | None  # from the measured throughput (time); = iterations otherwise
    schedule_iterations: int  # the preset's epochs x steps_per_epoch

    def progress(self, iterations_done: int, train_s: float) -> float:
        """Fraction of the budget spent, 0 -> 1."""
        if self.kind == "time":
            return min(1.0, train_s / self.amount)
        return min(1.0, iterations_done / self.iterations)

    def spent(self, iterations_done: int, train_s: float) -> bool:
        return self.progress(iterations_done, train_s) >= 1.0

    def schedule_step(self, progress: float) -> float:
        """The iteration of the preset's schedule (sampling) that ``progress`` corresponds to."""
        return progress * self.schedule_iterations

    def as_dict(self) -> dict:
        return asdict(self)


def plan_budget(budget: Budget, cfg: TrainConfig, cost: dict | None) -> BudgetPlan:
    """Lays ``budget`` out for a model whose measured cost is ``cost``."""
    cost = cost or {}
    per_seq = cost.get("train_flops_per_seq")
    per_iteration = float(per_seq) * cfg.batch_size if per_seq else None
    schedule = cfg.epochs * cfg.steps_per_epoch
    if budget.kind == "flops":
        if not per_iteration:
            raise ValueError("a FLOP budget needs the model's training FLOPs per sequence "
                             "(cost['train_flops_per_seq']); it was not measured")
        iterations = int(budget.amount // per_iteration)
        if iterations < 1:
            raise ValueError(f"--budget {budget}: one iteration costs {per_iteration:.3g} FLOPs, "
                             "more than the whole budget; accepted: a budget of at least one "
                             "iteration")
        estimated = iterations
    elif budget.kind == "steps":
        iterations = estimated = int(budget.amount)
    else:
        iterations = None
        rate = cost.get("train_seq_s")
        estimated = max(1, round(budget.amount * rate / cfg.batch_size)) if rate else None
    return BudgetPlan(budget.kind, budget.amount, per_iteration, iterations, estimated, schedule)


def checkpoint_iterations(plan: BudgetPlan) -> list[int]:
    """Iterations after which a fixed-count budget validates (distinct, the last = the budget)."""
    return sorted({max(1, math.ceil(f * plan.iterations - 1e-9)) for f in CHECKPOINT_FRACTIONS})


def cosine_lr(progress: float, cfg: TrainConfig) -> float:
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress)) / 2
