"""MoDeRNN against the authors' code (czh-98/MoDeRNN, ``models/MoDeRNN.py``, commit 4db34f4):
our parameter names onto theirs, and the golden case of modernn_golden.npz."""
from __future__ import annotations

import re

from models.modernn import MoDeRNN

from ..golden import GoldenCase, Tolerance


def authors_name(ours: str) -> str:
    """Our parameter name -> the name in the authors' state dict (czh-98/MoDeRNN)."""
    m = re.fullmatch(r"cells\.(\d+)\.(.+)", ours)
    if m is None:  # embed.* and output.* keep their names
        return ours
    layer, rest = m.groups()
    rest = re.sub(r"^x_from_h\.(\d)\.", lambda g: f"conv{'357'[int(g[1])] * 2}_H.", rest)
    rest = re.sub(r"^h_from_x\.(\d)\.", lambda g: f"conv{'357'[int(g[1])] * 2}_X.", rest)
    rest = rest.replace("gate_x.", "conv_i2h.").replace("gate_h.", "conv_h2h.")
    rest = rest.replace("norm_c.", "norm_cell.").replace("conv.", "0.").replace("norm.", "1.")
    return f"lstm.{layer}.{rest}"


def authors_names() -> tuple[dict[str, str], set[str]]:
    core = MoDeRNN(16, 16, 16, 16, hidden=16, layers=2, filter_size=3)
    return {authors_name(name): name for name, _ in core.named_parameters()}, set()


# The fixture's configuration (tests/fixtures/README.md): 16 patched channels at 16x16, hidden 16,
# filter 3, 2 layers, 5 DCB rounds; 368,160 parameters. The bound is derived in bench/verify/golden.py.
GOLDEN = GoldenCase(
    "modernn_golden.npz",
    lambda: MoDeRNN(16, 16, 16, 16, hidden=16, layers=2, filter_size=3),
    authors_names,
    Tolerance(atol=2e-4, growth=1.2,
              measured="envelope 6.4e-06 * 1.2^t; last step: f64 9.0e-05, ulp 1.0e-04, AVX2 3.5e-05, "
                       "SSE4.1 4.5e-05, 1 thread 5.7e-05; bit-exact on AVX-512"),
)

CASES = {"modernn": GOLDEN}
