"""The building blocks of the fast paths (models/fast.py): exact reformulations of LayerNorms over
whole maps and of several convolutions as one, computed from the original parameters.

- ``MapNorm``: ``nn.LayerNorm`` over ``[C, H, W]`` (or ``[C, D, H, W]``) maps, same parameters
  and state-dict names (``weight``, ``bias``); with ``fused_norm`` on it normalises through
  :func:`group_layer_norm`. PyTorch's LayerNorm kernel reduces each row (one sample's map) in
  one CUDA thread block, so batch 32 fills 32 of an H200's 132 SMs; a group norm or a
  two-level reduction spreads the reduction over many blocks.
- :func:`group_layer_norm`: G LayerNorms over G equal channel groups at once (G = 1: one
  LayerNorm), then the elementwise affine. ``NORM_IMPL`` selects how the statistics are
  reduced (``NORM_IMPLS``).
- :func:`merged_kernel`: the kernels of several convolutions of one input, zero-padded to the
  largest (centred: a k x k 'same' conv is a K x K 'same' conv whose outer taps are zero) and
  concatenated on the output dim: one convolution instead of several.
- :func:`paired_conv`: convolutions of *different* inputs whose outputs stay apart (each is
  normalised on its own), as one convolution: grouped (``groups=n`` over the concatenated
  inputs) or with a block-diagonal kernel (``PAIR_IMPL``).
- :func:`summed_kernel`: convolutions of different inputs whose output chunks are summed (a
  recurrent cell's gates: ``i_x + i_h``) as one convolution of the concatenated inputs: each
  input's kernel rows are placed at the chunks they are added to, zeros elsewhere.

Every kernel is built from the parameters at each forward, so gradients reach the originals and
the optimizer sees the same parameters; only the float summation order differs.

Chosen on CPU (``python -m bench.tools.fast_bench --kernels --repeats 5``: forward and backward at
MoDeRNN's reference sizes, batch 32, float32, a quiet 2-core AMD EPYC): ``NORM_IMPL =
"group_norm"`` (F.group_norm without affine, then one ``addcmul`` with the affine), the fastest
of the three candidates ([32, 64, 16, 16]: 1.97 ms against 5.13 two-level and 4.62 var_mean;
[32, 256, 16, 16]: 8.87 ms against 22.4 and 21.3). ``F.layer_norm`` itself took 2.12 and 6.53
ms there, so on a CPU the fast path is no LayerNorm speed-up: it is meant for GPUs, where the
choice is still to be measured (set ``models.fused.NORM_IMPL``). On CUDA, PyTorch's group-norm kernel
(aten/src/ATen/native/cuda/group_norm_kernel.cu, as I read it) also reduces each (sample,
group) row in one thread block, so with one group it may occupy the GPU no better than
LayerNorm; ``two_level`` reduces per channel first (B x C rows), the candidate to measure there.

``PAIR_IMPL = "grouped"``: the two gate convolutions [32, 64, 16, 16] -> 2 x 256 as one grouped
convolution took 0.95x the time of two convolutions (89 against 94 ms), the block-diagonal kernel
(twice the multiply-adds) 1.59x; the block-diagonal kernel is used only where the inputs'
channel counts differ.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_IMPLS = ("group_norm", "two_level", "var_mean")
NORM_IMPL = "group_norm"
PAIR_IMPLS = ("grouped", "block_diagonal")
PAIR_IMPL = "grouped"


class FastPathSwitch:
    """A module offering the fast paths in ``fast_paths``: ``set_fast_path`` sets the attribute
    of that name (a plain bool, never in the state dict)."""

    fast_paths: tuple[str, ...] = ()
    fused_norm = False
    fused_convs = False

    def set_fast_path(self, name: str, on: bool) -> None:
        if name not in self.fast_paths:
            raise ValueError(f"{type(self).__name__} offers no fast path {name!r}; it offers: "
                             f"{', '.join(self.fast_paths) or 'none'}")
        setattr(self, name, bool(on))


def group_layer_norm(x: torch.Tensor, groups: int, weight: torch.Tensor, bias: torch.Tensor,
                     eps: float, impl: str | None = None) -> torch.Tensor:
    """LayerNorm over each of ``groups`` equal channel groups of ``x`` ``[B, C, ...]`` (biased
    variance, ``eps`` inside the square root), then ``x * weight + bias`` (``[C, ...]``)."""
    impl = NORM_IMPL if impl is None else impl
    if impl == "group_norm":
        y = F.group_norm(x, groups, eps=eps)
    elif impl in ("two_level", "var_mean"):
        parts = x.reshape(x.shape[0], groups, x.shape[1] // groups, -1)
        if impl == "two_level":  # per channel, then combined: var = E[var_c] + Var[mean_c]
            var_c, mean_c = torch.var_mean(parts, dim=3, unbiased=False, keepdim=True)
            mean = mean_c.mean(2, keepdim=True)
            var = (var_c + (mean_c - mean).square()).mean(2, keepdim=True)
        else:  # one reduction over each whole group
            var, mean = torch.var_mean(parts.flatten(2), dim=2, unbiased=False, keepdim=True)
            var, mean = var[..., None], mean[..., None]
        y = ((parts - mean) * torch.rsqrt(var + eps)).view_as(x)
    else:
        raise ValueError(f"unknown norm implementation {impl!r}; accepted: {', '.join(NORM_IMPLS)}")
    return torch.addcmul(bias, y, weight)


class MapNorm(FastPathSwitch, nn.LayerNorm):
    """``nn.LayerNorm(shape)`` over whole maps; ``fused_norm``: through :func:`group_layer_norm`."""

    fast_paths = ("fused_norm",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fused_norm:
            return super().forward(x)
        return group_layer_norm(x, 1, self.weight, self.bias, self.eps)


def norm_groups(y: torch.Tensor, norms: Sequence[nn.LayerNorm]) -> torch.Tensor:
    """``cat([norm(chunk) for chunk, norm in zip(y.chunk(n, 1), norms)], 1)`` as one group norm
    over n groups with the concatenated affine (the norms must have equal shapes and eps)."""
    shapes = {tuple(n.normalized_shape) for n in norms}
    eps = {n.eps for n in norms}
    if len(shapes) != 1 or len(eps) != 1:
        raise ValueError(f"norm_groups needs equal LayerNorms; got shapes {shapes}, eps {eps}")
    weight = torch.cat([n.weight for n in norms])
    bias = torch.cat([n.bias for n in norms])
    return group_layer_norm(y, len(norms), weight, bias, eps.pop())


def merged_kernel(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The kernels ``[C_out_j, C_in, k_j, k_j]`` (odd k_j) zero-padded, centred, to the largest
    and concatenated on the output dim: one 'same' convolution computing all of them."""
    k = max(w.shape[-1] for w in weights)
    return torch.cat([F.pad(w, [(k - w.shape[-1]) // 2] * 4) for w in weights])


def block_diagonal_kernel(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """``[sum C_out_j, sum C_in_j, *k]``: kernel j maps input block j to output block j."""
    rows, total_in, start = [], sum(w.shape[1] for w in weights), 0
    for w in weights:
        pad = [0, 0] * (w.dim() - 2) + [start, total_in - start - w.shape[1]]
        rows.append(F.pad(w, pad))
        start += w.shape[1]
    return torch.cat(rows)


def paired_conv(inputs: Sequence[torch.Tensor], weights: Sequence[torch.Tensor],
                impl: str | None = None) -> torch.Tensor:
    """``cat([conv2d(x_j, w_j) for j], 1)`` ('same' padding, no bias) as one convolution of
    ``cat(inputs, 1)``: grouped where every input has as many channels, else block-diagonal."""
    impl = PAIR_IMPL if impl is None else impl
    if impl not in PAIR_IMPLS:
        raise ValueError(f"unknown pair implementation {impl!r}; accepted: {', '.join(PAIR_IMPLS)}")
    x, pad = torch.cat(list(inputs), 1), weights[0].shape[-1] // 2
    same_in = len({w.shape[1] for w in weights}) == 1 and len({w.shape[0] for w in weights}) == 1
    if impl == "grouped" and same_in:
        return F.conv2d(x, torch.cat(list(weights)), padding=pad, groups=len(weights))
    return F.conv2d(x, block_diagonal_kernel(weights), padding=pad)


def summed_kernel(weights: Sequence[torch.Tensor], targets: Sequence[Sequence], chunk: int,
                  ) -> torch.Tensor:
    """One kernel for ``sum_j conv(x_j, w_j)`` placed by chunks, over ``cat(x_j)``.

    ``weights[j]`` is ``[n_j * chunk, C_in_j, *k]``; ``targets[j][q]`` is the output chunk (an
    int, or a tuple of ints when it is added into several) that chunk q of conv j is added
    into. Output chunk t of the result is the sum of every conv chunk targeting t.
    """
    flat = [[(t,) if isinstance(t, int) else tuple(t) for t in ts] for ts in targets]
    n_out = 1 + max(t for ts in flat for tt in ts for t in tt)
    columns = []
    for w, ts in zip(weights, flat, strict=True):
        pieces = w.split(chunk)
        if len(pieces) != len(ts):
            raise ValueError(f"a kernel of {w.shape[0]} outputs has {len(pieces)} chunks of "
                             f"{chunk}; {len(ts)} targets given")
        rows = [None] * n_out
        for piece, tt in zip(pieces, ts, strict=True):
            for t in tt:
                if rows[t] is not None:
                    raise ValueError(f"two chunks of one kernel target output chunk {t}")
                rows[t] = piece
        zero = w.new_zeros(chunk, *w.shape[1:])
        columns.append(torch.cat([zero if r is None else r for r in rows]))
    return torch.cat(columns, dim=1)
