"""How fast the training loop runs, mode against mode, measured side by side in one process.

    python -m bench.tools.loop_bench                       # GPU: reference sizes, paper batch 32
    python -m bench.tools.loop_bench --device cpu --size quick --batch 4

Every mode times the same ``Trainer.training_step`` that training runs (both passes of the
authors' protocol), at the paper preset's configuration, on random frames already on the device.
The modes are cumulative, in this order (``LADDER``): ``eager``, then ``cuda_graph`` (the
captured iteration, bench.train.graph), ``fused_norm`` and ``fused_convs`` (the models' fast
paths, models.fast), ``compile`` (the recurrent step compiled); each adds its setting to all
those before it. ``bf16`` and ``channels_last`` (model and activations in NHWC memory order) are
measured on top of the last ladder mode asked for (``ON_TOP``). ``eager-fp32-sync`` (the loop as
it was: float32 without TF32 or cuDNN autotuning, the loss read after every iteration) and
``reduce-overhead`` (torch.compile's own CUDA graphs) are measured alone (``ALONE``). A mode
that cannot run here (cuda_graph on a CPU, a fast path no model offers yet) is printed as
skipped with why, and adds nothing to the modes after it.

The table gives each mode's seconds per iteration, its ratio to ``eager`` (to the first row
when eager is not measured), and the paper preset's training time at that speed; ``--profile
DIR`` adds one profiled iteration per mode (bench.tools.step_profile) and names the fastest.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

import models
import models.fast

from ..config import TrainConfig, get_preset
from ..grid.request import model_config
from ..runtime.clock import duration
from ..runtime.device import configure_device, resolve_device, synchronize
from ..runtime.graphs import graph_fallback
from ..runtime.provenance import device_name
from ..train.loop import Trainer
from .step_profile import profile_iteration

LADDER = {"eager": {}, "cuda_graph": {"cuda_graph": True}, "fused_norm": {"fused_norm": True},
          "fused_convs": {"fused_convs": True}, "compile": {"compile": True}}
ON_TOP = {"bf16": {"amp": "bf16"}, "channels_last": {"channels_last": True}}
BENCH_ONLY = ("channels_last",)  # changes the benchmark applies itself (not TrainConfig fields)
ALONE = {"eager-fp32-sync": {"tf32": False},
         "reduce-overhead": {"compile": True, "compile_mode": "reduce-overhead"}}
MODES = [*LADDER, *ON_TOP, *ALONE]
FAST_PATH_MODES = ("fused_norm", "fused_convs")  # TrainConfig fields that switch a fast path on
SIZES = {"reference": "paper", "quick": "quick", "smoke": "smoke"}  # model sizes of a preset


class Skipped(Exception):
    """A mode that cannot run here; its message says why."""


def plan_modes(selected: list[str]) -> list[tuple[str, dict]]:
    """(mode, its TrainConfig changes) in table order: eager, eager-fp32-sync, the ladder's other
    modes (each with the changes of every ladder mode up to it), those on top (with the changes
    up to the last ladder mode asked for), reduce-overhead; those in ``selected``. Changes of
    modes that cannot run are dropped later (:func:`time_modes`)."""
    last = max((i for i, mode in enumerate(LADDER) if mode in selected), default=0)
    order = ["eager", "eager-fp32-sync", *list(LADDER)[1:], *ON_TOP, "reduce-overhead"]
    planned = []
    for mode in (m for m in order if m in selected):
        if mode in LADDER:
            planned.append((mode, ladder_changes(list(LADDER).index(mode))))
        elif mode in ON_TOP:
            planned.append((mode, {**ladder_changes(last), **ON_TOP[mode]}))
        else:
            planned.append((mode, dict(ALONE[mode])))
    return planned


def ladder_changes(upto: int) -> dict:
    """The changes of the ladder's modes 0 .. ``upto``."""
    return {k: v for mode in list(LADDER)[: upto + 1] for k, v in LADDER[mode].items()}


def skip_reason(mode: str, changes: dict, device, model: torch.nn.Module) -> str | None:
    """Why ``mode`` cannot run here, or None."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    missing = [k for k in changes if k not in fields and k not in BENCH_ONLY]
    if missing:
        return f"TrainConfig has no field {missing[0]!r} in this checkout"
    if mode == "cuda_graph":
        return graph_fallback(device, SimpleNamespace(**{**TrainConfig().__dict__, **changes}),
                              parallel=False)
    if mode in FAST_PATH_MODES and mode not in models.fast.supported(model):
        return f"the model offers no {mode!r} fast path (models.fast)"
    return None


def time_mode(name: str, mode: str, changes: dict, batch: int, device, size: str,
              iterations: int, repeats: int, profile_to: Path | None = None) -> dict:
    """Median seconds per training iteration of ``name`` with ``changes`` (after a warm-up that
    includes any capture or compilation, reported apart); raises Skipped where it cannot run."""
    sync_each = mode == "eager-fp32-sync"
    paper = get_preset("paper")
    cfg = dataclasses.replace(paper.train, batch_size=batch,
                              **{k: v for k, v in changes.items() if hasattr(paper.train, k)})
    shape = get_preset(SIZES[size]).data
    data = SimpleNamespace(channels=1, height=shape.frame_size, width=shape.frame_size,
                           in_len=shape.in_len, out_len=shape.out_len)
    configure_device(device, cfg)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not sync_each
    torch.manual_seed(0)
    model = models.create_model(name, **model_config(name, get_preset(SIZES[size]), data, {}))
    reason = skip_reason(mode, changes, device, model)
    if reason:
        raise Skipped(reason)
    if changes.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    frames = torch.rand(batch, data.in_len + data.out_len, 1, data.height, data.width,
                        device=device)
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, data, cfg, device, 0, tmp, log=lambda line: None)
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
        run(3)  # warm-up: allocator, autotuning, capture, compilation
        warmup_s = time.perf_counter() - started
        if cfg.cuda_graph and (trainer.captured is None or trainer.captured.failed):
            raise Skipped(f"capture failed: {trainer.captured.failed if trainer.captured else '?'}")
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            loss = run(iterations)
            times.append((time.perf_counter() - started) / iterations)
        counts = (profile_iteration(lambda: run(1), device, profile_to, f"{name} {mode}: {changes}")
                  if profile_to else {})
    return {"iteration_s": statistics.median(times), "warmup_s": warmup_s, "loss": loss, **counts}


def time_modes(name: str, planned: list[tuple[str, dict]], args, device, batch: int,
               paper_iterations: int) -> list[tuple[str, dict]]:
    """Times ``planned`` for model ``name``, printing a row each; a skipped ladder mode's changes
    leave the modes after it. Returns (mode, result) of the modes that ran."""
    dropped, results, baseline = set(), [], None
    for mode, changes in planned:
        changes = {k: v for k, v in changes.items() if k not in dropped}
        profile_to = Path(args.profile) / f"profile_{name}_{mode}.txt" if args.profile else None
        try:
            got = time_mode(name, mode, changes, batch, device, args.size, args.iterations,
                            args.repeats, profile_to)
        except Skipped as why:
            dropped |= set(LADDER.get(mode, {}))
            print(f"| {name} | {label(mode)} | skipped: {why} | | | | |", flush=True)
            continue
        except Exception as error:  # one mode failing (e.g. a compiler limit) is reported
            dropped |= set(LADDER.get(mode, {}))
            print(f"| {name} | {label(mode)} | failed: {type(error).__name__}: "
                  f"{str(error).splitlines()[0][:120]} | | | | |", flush=True)
            continue
        finally:
            torch._dynamo.reset()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if baseline is None or mode == "eager":
            baseline = got["iteration_s"]
        launches = got.get("kernel_launches", "")
        print(f"| {name} | {label(mode)} | {got['iteration_s']:.4g} | "
              f"{baseline / got['iteration_s']:.2f}x | {got['warmup_s']:.1f} | {launches} | "
              f"{duration(paper_iterations * got['iteration_s'])} |", flush=True)
        results.append((mode, got))
    return results


def label(mode: str) -> str:
    """How the table names a mode: ladder modes after the first and those on top with a +."""
    return mode if mode in ALONE or mode == "eager" else f"+{mode}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loop_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="+", default=["modernn", "convlstm", "predrnn"])
    parser.add_argument("--modes", nargs="+", default=None, choices=MODES,
                        help="default on CUDA: the ladder and those on top; on a CPU the same "
                             "without compile (compiling costs minutes there)")
    parser.add_argument("--batch", type=int, default=None, help="default: 32 on CUDA, 2 on a CPU")
    parser.add_argument("--size", choices=list(SIZES), default=None,
                        help="model widths and frame sizes of this preset (reference: the "
                             "paper's; default: reference on CUDA, smoke on a CPU)")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="also profile one iteration per mode into DIR/profile_<model>_<mode>.txt")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    default = [*LADDER, *ON_TOP] if cuda else [m for m in [*LADDER, *ON_TOP] if m != "compile"]
    planned = plan_modes(args.modes or default)
    batch = args.batch or (32 if cuda else 2)
    args.size = args.size or ("reference" if cuda else "smoke")
    paper = get_preset("paper").train
    paper_iterations = paper.epochs * paper.steps_per_epoch
    print(f"device: {device_name(device)}; torch {torch.__version__}; batch {batch}; "
          f"model size: {args.size}; {args.iterations} iterations x {args.repeats} repeats "
          "(median); an iteration is both passes of the authors' protocol; modes cumulative "
          "(+: on top of the rows before)", flush=True)
    print("| model | mode | s/iteration | vs eager | warm-up (s) | kernel launches | paper preset "
          f"({paper_iterations:,} iterations) at batch {batch} |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        results = time_modes(name, planned, args, device, batch, paper_iterations)
        if results and args.profile:
            mode, got = min(results, key=lambda r: r[1]["iteration_s"])
            print(f"{name}: fastest {label(mode)}, {got['iteration_s']:.4g} s/iteration; its "
                  f"profile: {Path(args.profile) / f'profile_{name}_{mode}.txt'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
