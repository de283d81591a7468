"""How fast the training loop runs, mode against mode, measured side by side in one process.

    python -m bench.tools.loop_bench                       # GPU: reference sizes, paper batch 32
    python -m bench.tools.loop_bench --device cpu --size quick --batch 4

Every mode times the same ``Trainer.training_step`` that training runs (both passes of the
authors' protocol), at the paper preset's configuration, on random frames already on the device.
``eager-fp32-sync`` is the loop as it was: float32 without TF32, no cuDNN autotuning, and the
loss read on the host after every iteration. The table gives each mode's seconds per iteration,
its speed-up over that baseline, and the paper preset's training time at that speed.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from types import SimpleNamespace

import torch

import models

from ..config import get_preset
from ..grid.request import model_config
from ..runtime.clock import duration
from ..runtime.device import configure_device, resolve_device, synchronize
from ..runtime.provenance import device_name
from ..train.loop import Trainer

# name -> (TrainConfig changes, read the loss every iteration)
MODES = {
    "eager-fp32-sync": ({"tf32": False}, True),
    "eager": ({}, False),
    "bf16": ({"amp": "bf16"}, False),
    "compile": ({"compile": True}, False),
    "compile+bf16": ({"compile": True, "amp": "bf16"}, False),
    "reduce-overhead+bf16": ({"compile": True, "compile_mode": "reduce-overhead", "amp": "bf16"},
                             False),
}
SIZES = {"reference": "paper", "quick": "quick", "smoke": "smoke"}  # model sizes of a preset


def time_mode(name: str, mode: str, batch: int, device, size: str, iterations: int,
              repeats: int) -> dict:
    """Median seconds per training iteration of ``name`` in ``mode`` (after a warm-up that
    includes any compilation, reported apart)."""
    changes, sync_each = MODES[mode]
    paper = get_preset("paper")
    cfg = dataclasses.replace(paper.train, batch_size=batch, **changes)
    shape = get_preset(SIZES[size]).data
    data = SimpleNamespace(channels=1, height=shape.frame_size, width=shape.frame_size,
                           in_len=shape.in_len, out_len=shape.out_len)
    configure_device(device, cfg)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not sync_each
    torch.manual_seed(0)
    model = models.create_model(name, **model_config(name, get_preset(SIZES[size]), data, {}))
    frames = torch.rand(batch, data.in_len + data.out_len, 1, data.height, data.width,
                        device=device)
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, data, cfg, device, 0, tmp)
        step = 0

        def run(n):
            nonlocal step
            for _ in range(n):
                loss = trainer.training_step(frames, step, generator)
                step += 1
                if sync_each:
                    loss.item()
            synchronize(device)
            return loss.item()

        started = time.perf_counter()
        run(3)  # warm-up: allocator, autotuning, compilation
        warmup_s = time.perf_counter() - started
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            loss = run(iterations)
            times.append((time.perf_counter() - started) / iterations)
    return {"iteration_s": statistics.median(times), "warmup_s": warmup_s, "loss": loss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="+", default=["modernn", "convlstm", "predrnn"])
    parser.add_argument("--modes", nargs="+", default=None, choices=list(MODES),
                        help="default: all on CUDA; eager-fp32-sync, eager, bf16 on a CPU "
                             "(compiling costs minutes there and was measured slower)")
    parser.add_argument("--batch", type=int, default=None, help="default: 32 on CUDA, 2 on a CPU")
    parser.add_argument("--size", choices=list(SIZES), default="reference",
                        help="model widths and frame sizes of this preset (reference: the paper's)")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    modes = args.modes or (list(MODES) if cuda else ["eager-fp32-sync", "eager", "bf16"])
    batch = args.batch or (32 if cuda else 2)
    paper = get_preset("paper").train
    paper_iterations = paper.epochs * paper.steps_per_epoch
    print(f"device: {device_name(device)}; torch {torch.__version__}; batch {batch}; "
          f"model size: {args.size}; {args.iterations} iterations x {args.repeats} repeats "
          "(median); an iteration is both passes of the authors' protocol", flush=True)
    print("| model | mode | s/iteration | speed-up | warm-up (s) | paper preset "
          f"({paper_iterations:,} iterations) at batch {batch} |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        baseline = None
        for mode in modes:
            try:
                got = time_mode(name, mode, batch, device, args.size, args.iterations,
                                args.repeats)
            except Exception as error:  # one mode failing (e.g. a compiler limit) is reported
                print(f"| {name} | {mode} | failed: {type(error).__name__}: "
                      f"{str(error).splitlines()[0][:120]} | | | |", flush=True)
                continue
            baseline = baseline or got["iteration_s"]
            print(f"| {name} | {mode} | {got['iteration_s']:.4g} | "
                  f"{baseline / got['iteration_s']:.2f}x | {got['warmup_s']:.1f} | "
                  f"{duration(paper_iterations * got['iteration_s'])} |", flush=True)
            torch._dynamo.reset()
            if cuda:
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
