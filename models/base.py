"""One calling convention for every model, the rollout shared by recurrent models and the
windowed rollout shared by one-shot models (SimVP, TAU, PredFormer).

Every predictor is called as ``model(frames, in_len, out_len, truth_mask=None)``:

- ``frames``: ``[B, T, C, H, W]`` in [0, 1] with ``T >= in_len``. Frames after ``in_len`` are
  read only where ``truth_mask`` asks for them (scheduled sampling during training).
- ``truth_mask``: ``None`` (never feed true future frames) or a bool tensor ``[B, out_len - 1]``:
  entry ``[b, k]`` feeds the true frame ``in_len + k`` instead of the model's own prediction of it
  (scheduled sampling); or ``[B, in_len + out_len - 2]``: entry ``[b, t - 1]`` decides for every
  step ``t >= 1``, inside the input window too (PredRNN-V2's reverse scheduled sampling).
- It returns a :class:`Prediction`: ``future`` ``[B, out_len, C, H, W]`` predicts frames
  ``in_len .. in_len + out_len - 1``; ``warmup`` (recurrent models) ``[B, in_len - 1, C, H, W]``
  predicts frames ``1 .. in_len - 1`` from the frames before each; ``aux_loss`` is a scalar tensor
  for models with an auxiliary objective, else ``None``.

A model that learns statistics of the training data instead of weights (the mean-frame baseline)
defines ``fit_from_data(batches)``; the harness calls it once per cell, before training and
evaluation, with a fixed number of training batches ``[B, T, C, H, W]`` (bench.grid.cells.FIT_BATCHES)
drawn from the cell's seeded training stream. The loop never asks which model it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn


@dataclass
class Prediction:
    future: torch.Tensor
    warmup: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None


def check_call(frames: torch.Tensor, in_len: int, out_len: int, truth_mask) -> None:
    if frames.dim() != 5:
        raise ValueError(f"frames must be [B, T, C, H, W]; got shape {tuple(frames.shape)}")
    if in_len < 1 or out_len < 1:
        raise ValueError(f"in_len and out_len must be >= 1; got {in_len} and {out_len}")
    if frames.shape[1] < in_len:
        raise ValueError(f"frames has {frames.shape[1]} time steps; in_len is {in_len}")
    if truth_mask is not None:
        batch = frames.shape[0]
        accepted = [(batch, out_len - 1), (batch, in_len + out_len - 2)]
        if tuple(truth_mask.shape) not in accepted:
            raise ValueError(
                f"truth_mask must have shape {accepted[0]} or {accepted[1]}; "
                f"got {tuple(truth_mask.shape)}"
            )
        if frames.shape[1] < in_len + out_len - 1:
            raise ValueError("a truth_mask needs the true future frames in `frames`")


class RecurrentPredictor(nn.Module):
    """A model that predicts the next frame from the current one and a recurrent state.

    Subclasses implement :meth:`step`; the rollout (teacher forcing inside the input window,
    scheduled sampling after it) lives here once, for every recurrent model.
    """

    # Whether the explicit zero state (``initial_state``) is made a leaf that requires grad while
    # gradients are recorded. bench.runtime.compile sets it: a compiled step's graphs guard on
    # requires_grad, so the first call (zeros) and the next (states computed from parameters) then
    # share one graph. Values and parameter gradients are unchanged; the cost is the gradient with
    # respect to the zero state (its first step's share of the backward).
    state_requires_grad: bool = False

    def step(self, frame: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Map frame ``[B, C, H, W]`` and the state (:meth:`initial_state` at the first call) to
        the next frame."""
        raise NotImplementedError

    def initial_state(self, frame: torch.Tensor) -> Any:
        """The state :meth:`step` starts from for frames like ``frame`` ``[B, C, H, W]``: ``None``
        (the step builds its own zeros), unless the model returns its zero state explicitly, of
        the structure and shapes every later step passes on, so that a compiled step
        (bench.runtime.compile) is traced once, not again at the second call."""
        return None

    def auxiliary_loss(self, states: list[Any]) -> torch.Tensor | None:
        """An extra training objective computed from the per-step states (none by default)."""
        return None

    def forward(self, frames, in_len: int, out_len: int, truth_mask=None) -> Prediction:
        check_call(frames, in_len, out_len, truth_mask)
        # Column of truth_mask deciding step t (None: always the true frame inside the window).
        covers_input = truth_mask is not None and truth_mask.shape[1] == in_len + out_len - 2
        first_masked = 1 if covers_input else in_len
        outputs, states, state = [], [], self.initial_state(frames[:, 0])
        if self.state_requires_grad and torch.is_grad_enabled():
            state = _requiring_grad(state)
        for t in range(in_len + out_len - 1):
            if t < first_masked:
                frame = frames[:, t]
            elif truth_mask is None:
                frame = outputs[-1]
            else:
                use_truth = truth_mask[:, t - first_masked].view(-1, 1, 1, 1)
                frame = torch.where(use_truth, frames[:, t], outputs[-1])
            out, state = self.step(frame, state)
            outputs.append(out)
            states.append(state)
        predictions = torch.stack(outputs, dim=1)
        return Prediction(
            future=predictions[:, in_len - 1 :],
            warmup=predictions[:, : in_len - 1],
            aux_loss=self.auxiliary_loss(states),
        )


def _requiring_grad(state: Any) -> Any:
    """``state`` (tensors in tuples and lists, or None) with every tensor a leaf requiring grad."""
    if isinstance(state, torch.Tensor):
        return state.detach().requires_grad_()
    if isinstance(state, list | tuple):
        return type(state)(_requiring_grad(s) for s in state)
    return state


def windowed_rollout(net, frames: torch.Tensor, in_len: int, out_len: int, window: int) -> torch.Tensor:
    """The ``out_len`` future frames of a one-shot network that maps ``window`` frames to the next
    ``window`` (OpenSTL's ``_predict`` for SimVP, PredFormer's for PredFormer).

    ``out_len == window``: one pass. ``out_len < window``: one pass, cropped. ``out_len > window``:
    the predicted frames become the next input, as often as needed, and the concatenation is
    cropped to ``out_len``. Only ``frames[:, :in_len]`` is read: the last ``window`` of them, or,
    with fewer (an extension for the harness; the references fix ``in_len``), the input
    left-padded by repeating its first frame.
    """
    chunk = frames[:, max(0, in_len - window) : in_len]
    if chunk.shape[1] < window:  # fewer frames than the model was built for: repeat the first
        first = chunk[:, :1].expand(-1, window - chunk.shape[1], -1, -1, -1)
        chunk = torch.cat([first, chunk], dim=1)
    chunks = []
    for _ in range(-(-out_len // window)):
        chunk = net(chunk)
        chunks.append(chunk)
    return torch.cat(chunks, dim=1)[:, :out_len]
