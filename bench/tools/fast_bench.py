"""How fast the fast paths (models/fast.py) are, off against on, measured side by side in one process.

    python -m bench.tools.fast_bench                           # every model offering one, CPU
    python -m bench.tools.fast_bench --models modernn --device cuda --size reference --batch 32
    python -m bench.tools.fast_bench --kernels                 # the candidate kernels alone

Per model: seconds of one forward and backward pass (a rollout of ``--frames`` -> ``--frames``
frames, no scheduled sampling, the mean squared output as the loss) with each fast path the model
offers off, on alone and all on; the modes take turns within each repeat, so a busy machine
slows them alike; medians, and each mode's ratio to ``off``. ``--kernels``: the candidate
implementations of a LayerNorm over whole maps (models.fused.NORM_IMPLS against
``F.layer_norm``) and of the gate convolution pair (models.fused.PAIR_IMPLS against two
convolutions), forward and backward, at MoDeRNN's reference sizes.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import torch
import torch.nn.functional as F

import models
from models import fast, fused

from ..config import get_preset
from ..grid.request import model_config
from ..runtime.device import resolve_device, synchronize
from ..runtime.provenance import device_name

SIZES = {"reference": "paper", "quick": "quick", "smoke": "smoke"}  # model sizes of a preset


def median_times(calls: dict[str, Callable[[], None]], repeats: int, device) -> dict[str, float]:
    """Median seconds of each call, the calls taking turns (after one warm-up each)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()
    for _ in range(repeats):
        for name, call in calls.items():
            synchronize(device)
            started = time.perf_counter()
            call()
            synchronize(device)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def modes(offered: list[str]) -> dict[str, list[str]]:
    """off, each fast path alone, and all of them (when more than one)."""
    out = {"off": []} | {name: [name] for name in offered}
    if len(offered) > 1:
        out["all"] = list(offered)
    return out


def model_times(name: str, size: str, batch: int, frames: int, device, repeats: int) -> dict:
    """{mode: median seconds of a forward + backward pass} for ``name`` at ``size``."""
    preset = get_preset(SIZES[size])
    shape = SimpleNamespace(channels=1, height=preset.data.frame_size,
                            width=preset.data.frame_size, in_len=frames, out_len=frames)
    torch.manual_seed(0)
    base = models.create_model(name, **model_config(name, preset, shape, {})).to(device).train()
    clips = torch.rand(batch, 2 * frames, 1, shape.height, shape.width, device=device)
    calls = {}
    for mode, names in modes(fast.supported(base)).items():
        model = copy.deepcopy(base)
        fast.enable(model, names)

        def step(model=model):
            model.zero_grad(set_to_none=True)
            pred = model(clips, frames, frames)
            pred.future.square().mean().backward()
        calls[mode] = step
    return median_times(calls, repeats, device)


def kernel_times(device, repeats: int, batch: int = 32, hidden: int = 64, hw: int = 16) -> dict:
    """{candidate: median seconds, forward + backward} of the norm and conv-pair candidates."""
    def timed(fn, *tensors):
        def call():
            for t in tensors:
                t.grad = None
            fn(*tensors).square().mean().backward()
        return call

    calls = {}
    for channels in (hidden, 4 * hidden):
        x = torch.randn(batch, channels, hw, hw, device=device, requires_grad=True)
        w = torch.randn(channels, hw, hw, device=device, requires_grad=True)
        b = torch.randn(channels, hw, hw, device=device, requires_grad=True)
        calls[f"norm [{batch}, {channels}, {hw}, {hw}] layer_norm"] = timed(
            lambda x, w, b: F.layer_norm(x, w.shape, w, b), x, w, b)
        for impl in fused.NORM_IMPLS:
            calls[f"norm [{batch}, {channels}, {hw}, {hw}] {impl}"] = timed(
                lambda x, w, b, impl=impl: fused.group_layer_norm(x, 1, w, b, 1e-5, impl), x, w, b)
    x, h = (torch.randn(batch, hidden, hw, hw, device=device, requires_grad=True) for _ in range(2))
    wx, wh = (torch.randn(4 * hidden, hidden, 3, 3, device=device, requires_grad=True)
              for _ in range(2))
    label = f"gate pair [{batch}, {hidden}, {hw}, {hw}] -> 2 x {4 * hidden}"
    calls[f"{label} two convs"] = timed(
        lambda x, h, wx, wh: torch.cat([F.conv2d(x, wx, padding=1), F.conv2d(h, wh, padding=1)], 1),
        x, h, wx, wh)
    for impl in fused.PAIR_IMPLS:
        calls[f"{label} {impl}"] = timed(
            lambda x, h, wx, wh, impl=impl: fused.paired_conv([x, h], [wx, wh], impl), x, h, wx, wh)
    return median_times(calls, repeats, device)


def model_lines(names: list[str], args, device) -> Iterator[str]:
    """The header, then one line per model as soon as it is measured."""
    yield (f"fast paths, forward + backward of a {args.frames} -> {args.frames} rollout, batch "
           f"{args.batch}, {args.size} sizes, {device_name(device)}, median of {args.repeats}")
    for name in names:
        times = model_times(name, args.size, args.batch, args.frames, device, args.repeats)
        off = times["off"]
        cells = [f"off {off:.4f} s"] + [f"{mode} {t:.4f} s ({t / off:.2f}x)"
                                        for mode, t in times.items() if mode != "off"]
        yield f"  {name:<12} " + "   ".join(cells)


def kernel_lines(args, device) -> list[str]:
    lines = [f"candidate kernels, forward + backward, {device_name(device)}, median of {args.repeats}"]
    times = kernel_times(device, args.repeats)
    groups: dict[str, float] = {}
    for label, t in times.items():
        group = label.rsplit(" ", 1)[0] if not label.endswith("two convs") else label[:-10]
        first = groups.setdefault(group, t)
        lines.append(f"  {label:<52} {t * 1e3:8.2f} ms ({t / first:.2f}x)")
    return lines


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m bench.tools.fast_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None,
                        help="registered names (default: every model offering a fast path)")
    parser.add_argument("--size", choices=list(SIZES), default="quick")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=5, help="input and predicted frames")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kernels", action="store_true", help="the candidate kernels alone")
    args = parser.parse_args(argv)
    for option in ("batch", "frames", "repeats"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be >= 1; got {getattr(args, option)}")
    return args


def offering_models(size: str) -> list[str]:
    """The registered models that offer a fast path at ``size`` (built on the meta device)."""
    preset = get_preset(SIZES[size])
    shape = SimpleNamespace(channels=1, height=preset.data.frame_size,
                            width=preset.data.frame_size, in_len=5, out_len=5)
    found = []
    for name in models.list_models("*"):
        with torch.device("meta"):
            model = models.create_model(name, **model_config(name, preset, shape, {}))
        if fast.supported(model):
            found.append(name)
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        device = resolve_device(args.device)
        names = args.models or offering_models(args.size)
        unknown = [n for n in names if n not in models.list_models("*")]
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(unknown)}; known: "
                             f"{', '.join(models.list_models('*'))}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in kernel_lines(args, device) if args.kernels else model_lines(names, args, device):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
