"""``run_bench.py`` with cost profiling stubbed out (it takes most of a smoke run's time).

The resume tests run this as a subprocess (also under torchrun) and kill it; everything else is
the real CLI. ``BENCH_TEST_CRASH_AFTER=K`` makes rank 0 die (``os._exit``, no clean-up) right
after its K-th mid-epoch checkpoint, as a crash or a kill would; ``BENCH_TEST_SIGNAL_AFTER=K:R:SIG``
makes rank R send itself signal SIG (SIGTERM, SIGSTOP...) right after its K-th mid-epoch
checkpoint (the other ranks count the same checkpoints, rank 0 alone writes them);
``BENCH_TEST_HOLD_AFTER=K`` makes training wait after the K-th mid-epoch checkpoint until a first
Ctrl-C or SIGTERM arrives (at most a minute), so a test stops it mid-training on any machine;
``BENCH_TEST_NO_REPORT=1``
skips the tables and plots (seconds of matplotlib), writing an empty summary.md;
``BENCH_TEST_GRAD_NORMS=FILE`` has rank 0 write the gradient norm after every iteration to FILE
(JSON), to compare the gradients of N ranks with one process's (Adam hides their scale);
``BENCH_TEST_TRAIN_FLOPS=1`` adds a training FLOP count (2 per parameter) to the stubbed cost.
"""
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.grid.costs  # noqa: E402
import bench.train.loop  # noqa: E402
from bench.runtime import distributed  # noqa: E402

TRAIN_FLOPS = os.environ.get("BENCH_TEST_TRAIN_FLOPS") == "1"


def _stub_cost(model, *args, **kwargs):
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, **({"train_flops_per_seq": 2.0 * params} if TRAIN_FLOPS else {})}


bench.grid.costs.profile_model = _stub_cost

CRASH_AFTER = int(os.environ.get("BENCH_TEST_CRASH_AFTER", "0"))
SIGNAL_AFTER, SIGNAL_RANK, SIGNAL_NAME = (os.environ.get("BENCH_TEST_SIGNAL_AFTER") or "0:0:-").split(":")
HOLD_AFTER = int(os.environ.get("BENCH_TEST_HOLD_AFTER", "0"))


def hold_until_signalled(seconds: float = 60.0) -> None:
    """Waits until a signal replaces the SIGINT handler (the training loop's handler puts the
    previous one back on the first Ctrl-C or SIGTERM), or ``seconds`` pass."""
    handler, end = signal.getsignal(signal.SIGINT), time.monotonic() + seconds
    while signal.getsignal(signal.SIGINT) is handler and time.monotonic() < end:
        time.sleep(0.05)


if CRASH_AFTER or int(SIGNAL_AFTER) or HOLD_AFTER:
    save, saved = bench.train.loop.Trainer._save, []

    def save_then_crash(self, name, epoch, result, batch=0, **kwargs):
        save(self, name, epoch, result, batch=batch, **kwargs)
        saved.extend([batch] if batch else [])
        if len(saved) == CRASH_AFTER and distributed.is_main():
            os._exit(17)
        if batch and len(saved) == int(SIGNAL_AFTER) and distributed.rank() == int(SIGNAL_RANK):
            os.kill(os.getpid(), getattr(signal, SIGNAL_NAME))
        if batch and len(saved) == HOLD_AFTER:
            hold_until_signalled()

    bench.train.loop.Trainer._save = save_then_crash

GRAD_NORMS = os.environ.get("BENCH_TEST_GRAD_NORMS")
if GRAD_NORMS:
    step, norms = bench.train.loop.Trainer.training_step, []

    def step_and_record(self, *args, **kwargs):
        loss = step(self, *args, **kwargs)
        norms.append(sum(p.grad.square().sum() for p in self.model.parameters()).sqrt().item())
        if distributed.is_main():
            Path(GRAD_NORMS).parent.mkdir(parents=True, exist_ok=True)
            Path(GRAD_NORMS).write_text(json.dumps(norms))
        return loss

    bench.train.loop.Trainer.training_step = step_and_record

import bench.report  # noqa: E402
from bench.cli.main import main  # noqa: E402

if os.environ.get("BENCH_TEST_NO_REPORT") == "1":  # the CLI imports write_report when it reports
    bench.report.write_report = lambda folder, **options: (Path(folder) / "summary.md").write_text("")

if __name__ == "__main__":
    sys.exit(main())
