"""The cost of a model: parameters (and which ones the forward pass uses), operation counts,
throughput, peak memory and efficiency against the device's measured matmul peak."""
from __future__ import annotations

import copy
import tempfile

import torch

from ..config import TrainConfig
from ..runtime.compile import apply_fast_paths
from ..runtime.memory import PeakMemory
from ..runtime.precision import autocast
from ..train.loop import Trainer, is_trainable
from ..train.loss import sequence_loss
from .flops import rollout_macs, training_flops
from .timing import conv_peak_flops, matmul_peak_flops, median_rate

AMP_DTYPES = {"none": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def parameter_counts(model, data) -> dict:
    """Total and trainable parameters, and those a training step actually gives a gradient."""
    counts = {
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    if not is_trainable(model):
        return {**counts, "used_params": 0, "unused_param_names": []}
    probe = copy.deepcopy(model).cpu().train()
    frames = torch.rand(1, data.in_len + data.out_len, data.channels, data.height, data.width)
    sequence_loss(probe(frames, data.in_len, data.out_len), frames, data.in_len,
                  TrainConfig()).backward()
    unused = [n for n, p in probe.named_parameters() if p.requires_grad and p.grad is None]
    used = sum(p.numel() for p in probe.parameters() if p.grad is not None)
    return {**counts, "used_params": used, "unused_param_names": unused}


def profile_model(model, data, cfg: TrainConfig, device: torch.device, batch_size: int,
                  repeats: int = 5, log=lambda what: None) -> dict:
    """Every cost column for ``model`` on ``data``'s shape, measured on ``device``; ``log`` is
    told what is being measured as it starts."""
    log("parameters and operation counts (fvcore, torch), batch 1")
    cost = parameter_counts(model, data)
    cost.update(rollout_macs(model, (data.channels, data.height, data.width),
                             data.in_len, data.out_len))
    cost.update(measure_speed(model, data, cfg, device, batch_size, repeats, log))
    peak = cost["peak_tflops"] * 1e12
    cost["infer_efficiency"] = (None if cost["gmacs_torch"] is None
                                else 2 * cost["gmacs_torch"] * 1e9 * cost["infer_seq_s"] / peak)
    if "train_seq_s" in cost:
        cost["train_efficiency"] = cost["train_flops_per_seq"] * cost["train_seq_s"] / peak
    return cost


def measure_speed(model, data, cfg: TrainConfig, device, batch_size: int, repeats: int = 5,
                  log=lambda what: None) -> dict:
    """Inference (batch 1 and ``batch_size``) and training throughput in sequences/s, peak memory.

    Each rate is the median of ``repeats`` timed calls after one warm-up; peak memory is one
    more call; training FLOPs are counted on a batch-1 step (the count scales with the batch).
    The fast paths ``cfg`` asks for are on (``fast_paths``: those that applied).
    """
    model = copy.deepcopy(model).to(device)
    applied = apply_fast_paths(model, cfg)
    in_len, out_len = data.in_len, data.out_len
    frames = torch.rand(batch_size, in_len + out_len, data.channels, data.height, data.width,
                        device=device)
    result = {"bench_batch": batch_size, "device": str(device), "amp": cfg.amp, "fast_paths": applied,
              "threads": torch.get_num_threads(),
              "matmul_peak_tflops": matmul_peak_flops(device, AMP_DTYPES[cfg.amp]) / 1e12,
              "conv_peak_tflops": conv_peak_flops(device, AMP_DTYPES[cfg.amp]) / 1e12}
    result["peak_tflops"] = max(result["matmul_peak_tflops"], result["conv_peak_tflops"])

    model.eval()
    log(f"inference speed and memory at batch 1 and {batch_size} ({repeats} timed rollouts each)")
    for batch, suffix in ((1, "_b1"), (batch_size, "")):
        @torch.no_grad()
        def infer(clips=frames[:batch, :in_len]):
            with autocast(device, cfg.amp):
                model(clips, in_len, out_len)

        rate = median_rate(infer, batch, device, repeats=repeats)
        with PeakMemory(device) as memory:  # apart from the timing: sampling costs CPU time
            infer()
        result[f"infer_seq_s{suffix}"] = rate["median"]
        result[f"infer_seq_s{suffix}_range"] = [rate["min"], rate["max"]]
        result[f"infer_peak_mb{suffix}"] = memory.peak_bytes / 2**20
    result["infer_ms_per_seq_b1"] = 1000 / result["infer_seq_s_b1"]

    if is_trainable(model):
        log(f"training speed and memory at batch {batch_size} ({repeats} timed iterations)")
        with tempfile.TemporaryDirectory() as tmp:
            # silent: the cell's own Trainer says once whether its step is captured (cuda_graph)
            trainer = Trainer(model, data, cfg, device, seed=0, checkpoint_dir=tmp,
                              log=lambda line: None)
            generator = torch.Generator().manual_seed(0)
            model.train()
            def step(clips=frames):
                trainer.training_step(clips, 0, generator)

            rate = median_rate(step, batch_size, device, repeats=repeats)
            with PeakMemory(device) as memory:
                step()
            result["train_flops_per_seq"] = training_flops(step, frames[:1])
        result.update(train_seq_s=rate["median"], train_seq_s_range=[rate["min"], rate["max"]],
                      train_peak_mb=memory.peak_bytes / 2**20)
    return result
