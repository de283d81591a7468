"""Timing and memory: medians after warm-up with device synchronisation, and a matmul peak probe."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import statistics
import threading
import time

import psutil
import torch

from .precision import synchronize


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


class PeakMemory:
    """Peak memory of a block, above what was in use when it began.

    CUDA: ``max_memory_allocated`` after a reset. CPU: the resident set size sampled every
    ``interval_s`` by a thread. Before the baseline is read, garbage is collected and the C
    allocator hands its free memory back to the system (glibc), so that neither a previous
    model's leftovers nor memory the allocator kept from it hide this block's own peak.
    """

    def __init__(self, device: torch.device, interval_s: float = 0.001):
        self.device, self.interval_s = device, interval_s
        self.peak_bytes = 0

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            _release_free_cpu_memory()
            self._process = psutil.Process()
            self._base = self._peak = self._process.memory_info().rss
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._process.memory_info().rss)
            self.peak_bytes = self._peak - self._base
        return False


_libc = None


def _release_free_cpu_memory() -> None:
    """glibc: hand the heap's free memory back to the system, so that resident memory follows
    what is really in use (the allocator's own settings are left alone: changing its mmap
    threshold would slow every later allocation)."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    if _libc:
        try:
            _libc.malloc_trim(0)
        except AttributeError:  # not glibc
            pass


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
