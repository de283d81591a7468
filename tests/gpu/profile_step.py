"""Where a training iteration's GPU time goes: MoDeRNN at the reference size, paper batch 32.

    python tests/gpu/profile_step.py [--amp bf16] [--model modernn]
"""
import argparse
import dataclasses
import tempfile
import time
from types import SimpleNamespace

import torch
from torch.profiler import ProfilerActivity, profile

import models
from bench.config import get_preset
from bench.runtime.device import configure_device
from bench.train.loop import Trainer

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="modernn")
parser.add_argument("--amp", default="none")
parser.add_argument("--batch", type=int, default=32)
args = parser.parse_args()
device = torch.device("cuda")
cfg = dataclasses.replace(get_preset("paper").train, batch_size=args.batch, amp=args.amp)
configure_device(device, cfg)
data = SimpleNamespace(channels=1, height=64, width=64, in_len=10, out_len=10)
torch.manual_seed(0)
model = models.create_model(args.model, channels=1, height=64, width=64)
frames = torch.rand(args.batch, 20, 1, 64, 64, device=device)
generator = torch.Generator().manual_seed(0)
with tempfile.TemporaryDirectory() as tmp:
    trainer = Trainer(model, data, cfg, device, 0, tmp)
    for step in range(3):
        trainer.training_step(frames, step, generator)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for step in range(3):
        trainer.training_step(frames, step, generator)
    torch.cuda.synchronize()
    print(f"{args.model} amp={args.amp} batch {args.batch}: "
          f"{(time.perf_counter() - started) / 3:.3f} s/iteration")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        trainer.training_step(frames, 5, generator)
        torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60))
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=60))
