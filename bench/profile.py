"""Cost of a model: parameters, fvcore multiply-adds of a whole rollout, throughput, peak memory."""
from __future__ import annotations

import copy
import statistics
import tempfile
import threading
import time

import psutil
import torch
from fvcore.nn import FlopCountAnalysis

from .config import TrainConfig
from .precision import autocast, synchronize
from .train import Trainer, is_trainable


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


class _Rollout(torch.nn.Module):
    """Binds the integer arguments so that fvcore can trace ``model(frames)``."""

    def __init__(self, model, in_len: int, out_len: int):
        super().__init__()
        self.model, self.in_len, self.out_len = model, in_len, out_len

    def forward(self, frames):
        return self.model(frames, self.in_len, self.out_len).future


@torch.no_grad()
def fvcore_macs(model, shape: tuple[int, int, int], in_len: int, out_len: int) -> dict:
    """fvcore's count for one test rollout at batch 1 (one multiply-add counts as one)."""
    model = copy.deepcopy(model).cpu().eval()
    frames = torch.rand(1, in_len, *shape)
    analysis = FlopCountAnalysis(_Rollout(model, in_len, out_len), (frames,))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    total = analysis.total()
    return {"gmacs_fvcore": total / 1e9, "fvcore_skipped_ops": sorted(analysis.unsupported_ops())}


class PeakMemory:
    """Peak memory of a block: CUDA max allocated, or on a CPU the sampled peak RSS growth."""

    def __init__(self, device: torch.device, interval_s: float = 0.002):
        self.device, self.interval_s = device, interval_s
        self.peak_bytes = 0

    def __enter__(self):
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._process = psutil.Process()
            self._base = self._process.memory_info().rss
            self._peak = self._base
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


def _median_rate(run, items: int, device, warmup: int, repeats: int) -> tuple[float, float]:
    """Median items/s over ``repeats`` timed calls after ``warmup`` untimed ones, and its spread."""
    for _ in range(warmup):
        run()
    synchronize(device)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize(device)
        rates.append(items / (time.perf_counter() - start))
    spread = (max(rates) - min(rates)) / 2 if len(rates) > 1 else 0.0
    return statistics.median(rates), spread


def measure_speed(model, data, cfg: TrainConfig, device, batch_size: int,
                  warmup: int = 1, repeats: int = 3) -> dict:
    """Training (one protocol iteration) and inference throughput in sequences/s, with peak memory."""


    model = copy.deepcopy(model).to(device)
    in_len, out_len = data.in_len, data.out_len
    frames = torch.rand(batch_size, in_len + out_len, data.channels, data.height, data.width,
                        device=device)
    result = {"bench_batch": batch_size, "device": str(device), "amp": cfg.amp,
              "threads": torch.get_num_threads()}

    @torch.no_grad()
    def infer():
        with autocast(device, cfg.amp):
            model(frames[:, :in_len], in_len, out_len)

    model.eval()
    with PeakMemory(device) as memory:
        rate, spread = _median_rate(infer, batch_size, device, warmup, repeats)
    result.update(infer_seq_s=rate, infer_seq_s_spread=spread, infer_peak_mb=memory.peak_bytes / 2**20)

    if is_trainable(model):
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(model, data, cfg, device, seed=0, checkpoint_dir=tmp)
            generator = torch.Generator().manual_seed(0)
            model.train()
            with PeakMemory(device) as memory:
                rate, spread = _median_rate(lambda: trainer.training_step(frames, 0, generator),
                                            batch_size, device, warmup, repeats)
        result.update(train_seq_s=rate, train_seq_s_spread=spread,
                      train_peak_mb=memory.peak_bytes / 2**20)
    return result
