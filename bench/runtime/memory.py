"""Memory: the peak of a block (CUDA counters or the resident set), out-of-memory errors, and
giving memory back after a failed cell."""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading

import psutil
import torch

from .device import synchronize


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


# ---------------------------------------------------------------------------- failures
def is_out_of_memory(error: BaseException) -> bool:
    return (isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError))
            or (isinstance(error, RuntimeError) and any(
                text in str(error) for text in ("out of memory", "can't allocate memory"))))


def free_memory(device: torch.device | None = None) -> None:
    """Give back what a failed cell held: Python garbage, then the CUDA caching allocator."""
    gc.collect()
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.empty_cache()
