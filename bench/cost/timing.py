"""Timing and memory: medians after warm-up with device synchronisation, and a matmul peak probe."""
from __future__ import annotations

import statistics
import time

import torch

from ..runtime.device import synchronize


def median_rate(run, items: int, device, warmup: int = 1, repeats: int = 5) -> dict:
    """Items per second of ``run()``: the median over ``repeats`` timed calls after ``warmup``."""
    for _ in range(warmup):
        run()
    synchronize(device)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize(device)
        rates.append(items / (time.perf_counter() - start))
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "repeats": repeats}


_PEAK_CACHE: dict[tuple, float] = {}


def matmul_peak_flops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """The device's measured matrix-multiply throughput (FLOP/s), probed once per process."""
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return _probe(("matmul", str(device), dtype), lambda: a @ b, 2 * n**3, device)


@torch.no_grad()
def conv_peak_flops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """Measured throughput (FLOP/s) of a large 3x3 convolution: on CPUs whose BLAS is slow
    (MKL on AMD processors) the convolution library reaches well above the matmul rate."""
    batch, channels, size = (32, 512, 32) if device.type == "cuda" else (8, 256, 32)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(device, dtype)
    x = torch.randn(batch, channels, size, size, device=device, dtype=dtype)
    flops = 2 * batch * channels * channels * 9 * size * size
    return _probe(("conv", str(device), dtype), lambda: conv(x), flops, device)


def _probe(key: tuple, run, flops: float, device) -> float:
    key = (*key, torch.get_num_threads())
    if key not in _PEAK_CACHE:
        # the best of several runs: a peak, not a typical rate
        _PEAK_CACHE[key] = flops * median_rate(run, 1, device, warmup=2, repeats=7)["max"]
    return _PEAK_CACHE[key]
