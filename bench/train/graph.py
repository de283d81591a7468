"""The training iteration captured once per cell in a CUDA graph and replayed (``cuda_graph``).

An iteration of the protocol (bench.train.loop: the unrolled forward, the loss, the backward and
the optimizer step, and the same for the reversed clips) launches tens of thousands of small
kernels; captured once, each iteration is one graph launch. How (PyTorch's "whole network
capture", torch.cuda.graphs):

- static inputs: the batch and the scheduled-sampling mask are copied into buffers the graph
  reads (the mask is always a tensor: all-False once sampling has ended, bench.train.sampling);
- warm-up: ``WARMUP_ITERATIONS`` iterations on a side stream (allocator, cuDNN autotuning,
  the optimizer's lazily created state, compilation) before the capture; they must not change
  what is trained, so the model's parameters and buffers, the optimizer's state and the random
  states are restored (in place: the graph records addresses) afterwards. The first replay is
  then the first real iteration;
- the optimizer is fused and ``capturable`` with a tensor learning rate that the schedules fill
  in place (bench.train.optim.set_lr), so a replay uses the rate of its iteration;
- the loss a replay returns is copied out of the graph's static output (the loop keeps several
  before reading them);
- a checkpoint restored into the model and optimizer (a resume, any ``load_state_dict``)
  invalidates the graph: the next iteration captures again.

What the capture cannot serve runs eager: the configurations of bench.runtime.graphs (said once
at the Trainer's start), a capture that fails (its error logged once), and a batch of another
shape than the captured one.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

WARMUP_ITERATIONS = 3  # PyTorch's examples warm up a few iterations before capturing


class CudaGraphs:
    """What a captured step asks of the device: warm-up on a side stream, capture, replay."""

    def warm_up(self, body: Callable[[], torch.Tensor], iterations: int) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(iterations):
                body()
        torch.cuda.current_stream().wait_stream(side)

    def capture(self, body: Callable[[], torch.Tensor]):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = body()
        return graph, output

    def replay(self, handle) -> torch.Tensor:
        graph, output = handle
        graph.replay()
        return output


class CapturedStep:
    """``step(frames, mask)``: ``body(frames, mask)`` (one iteration, returning its loss) run by
    replaying a graph captured at the first call; the loss returned is a copy."""

    def __init__(self, body: Callable, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 log=print, backend=None, warmup: int = WARMUP_ITERATIONS):
        self.body, self.model, self.optimizer, self.log = body, model, optimizer, log
        self.backend = backend or CudaGraphs()
        self.warmup = warmup
        self.captures = 0  # how many times the iteration was captured (tests, the log)
        self.failed: str | None = None  # why the capture failed; then every step runs eager
        self.invalidate()

    def invalidate(self) -> None:
        """Drops the graph (its memory too): the next step captures again. To call after the
        model's or the optimizer's state was loaded from elsewhere."""
        self.handle, self.inputs, self.warned_shape = None, None, False

    def __call__(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.failed is not None:
            return self.body(frames, mask)
        if self.handle is None:
            self._capture(frames, mask)
            if self.failed is not None:
                return self.body(frames, mask)
        static_frames, static_mask = self.inputs
        if frames.shape != static_frames.shape or mask.shape != static_mask.shape:
            if not self.warned_shape:
                self.log(f"   cuda_graph: a batch of shape {tuple(frames.shape)} (captured: "
                         f"{tuple(static_frames.shape)}) runs eager")
                self.warned_shape = True
            return self.body(frames, mask)
        static_frames.copy_(frames)
        static_mask.copy_(mask)
        return self.backend.replay(self.handle).clone()

    def _capture(self, frames: torch.Tensor, mask: torch.Tensor) -> None:
        self.inputs = (frames.clone(), mask.clone())

        def run():
            return self.body(*self.inputs)

        saved = snapshot(self.model, self.optimizer)
        try:
            self.backend.warm_up(run, self.warmup)
            restore(self.model, self.optimizer, saved)
            self.optimizer.zero_grad(set_to_none=True)
            self.handle = self.backend.capture(run)
        except Exception as error:  # e.g. an operation that synchronises with the host
            restore(self.model, self.optimizer, saved)
            self.handle, self.failed = None, f"{type(error).__name__}: {str(error).splitlines()[0]}"
            self.log(f"   cuda_graph: capture failed, eager steps from here ({self.failed[:200]})")
            return
        self.captures += 1


def snapshot(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Copies of what training changes: the model's parameters and buffers, the optimizer's
    per-parameter state, and the random states (CPU, and CUDA where present)."""
    return {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizer": {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
                      for p, s in optimizer.state.items()},
        "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
    }


def restore(model: torch.nn.Module, optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Puts ``saved`` (:func:`snapshot`) back in place (the tensors keep their addresses). The
    optimizer state of a parameter that had none yet is zeroed, which is how Adam starts it
    (step 0, zero moments)."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(saved["model"][name])
        for param, state in optimizer.state.items():
            before = saved["optimizer"].get(param)
            for key, value in state.items():
                if torch.is_tensor(value) and before:
                    value.copy_(before[key])
                elif torch.is_tensor(value):
                    value.zero_()
                else:
                    state[key] = before[key] if before else type(value)(0)
    torch.set_rng_state(saved["cpu_rng"])
    if saved["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
