"""Re-measure what the golden tests' bounds are derived from (see bench/verify/golden.py).

    python tests/calibrate_golden.py [names...] [--isa]

For each golden case, prints the max |difference| (and its growth: first, middle and last step)
between:
  ref    our float32 outputs and the reference's (the fixture's ``expected``);
  f64    our float32 outputs and our float64 outputs (the float32 rounding of one ordering);
  ulp    our float32 outputs and theirs after multiplying every weight and input element by
         (1 + delta), delta uniform in [-eps, eps] (worst of 3 draws: rounding-sized noise);
and, with --isa, ``ref`` again under forced instruction sets (ATEN_CPU_CAPABILITY and
ONEDNN_MAX_CPU_ISA: avx2, and default / SSE4.1) and one thread, each in a fresh process.
Then the current bound (atol) and its ratio to the largest of these.
Not a test (pytest does not collect it); it takes about a minute.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

import torch  # noqa: E402

from bench.verify.golden import load_fixture, perturbed, run_case  # noqa: E402

ISA_ENVS = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "sse41": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "1thread": {"OMP_NUM_THREADS": "1"},
}


def all_cases():
    from bench.verify.cases import CASES

    return dict(CASES)


def per_step(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    return (a.double() - b.double()).abs().flatten(2).amax(dim=(0, 2)).tolist()


def show(steps: list[float]) -> str:
    mid = len(steps) // 2
    picks = f"{steps[0]:.1e} {steps[mid]:.1e} {steps[-1]:.1e}"
    return f"{max(steps):.2e} (steps 0/{mid}/{len(steps) - 1}: {picks})"


def ref_only(names: list[str]) -> dict[str, list[float]]:
    cases = all_cases()
    return {name: per_step(*run_case(cases[name])) for name in names}


SAFETY = 20  # the bound's atol is this many times the largest measured difference


def round_up(x: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at or above x."""
    k = math.floor(math.log10(x))
    return min(m * 10.0 ** e for e in (k, k + 1) for m in (1, 2, 5) if m * 10.0 ** e >= x * (1 - 1e-9))


def main(argv: list[str]) -> None:
    if argv[:1] == ["--ref-json"]:  # the child process of --isa
        print(json.dumps(ref_only(argv[1:])))
        return
    isa = "--isa" in argv
    cases = all_cases()
    names = [a for a in argv if not a.startswith("--")] or list(cases)
    torch.manual_seed(0)
    isa_results = {}
    if isa:
        for label, env in ISA_ENVS.items():
            res = subprocess.run([sys.executable, __file__, "--ref-json", *names], check=True,
                                 capture_output=True, text=True, env={**os.environ, **env})
            isa_results[label] = json.loads(res.stdout.strip().splitlines()[-1])
    for name in names:
        case = cases[name]
        fixture = load_fixture(case.fixture)
        got, expected = run_case(case, fixture=fixture)
        got64, _ = run_case(case, torch.float64, fixture=fixture)
        ulp = [0.0] * got.shape[1]
        for seed in range(3):
            shaken, _ = run_case(case, fixture=perturbed(fixture, seed))
            ulp = [max(a, b) for a, b in zip(ulp, per_step(shaken, got), strict=True)]
        measured = {"ref": per_step(got, expected), "f64": per_step(got64, got), "ulp": ulp}
        measured.update({f"ref/{k}": v[name] for k, v in isa_results.items()})
        envelope = [max(col) for col in zip(*measured.values(), strict=True)]
        g = case.tol.growth
        atol_t = [case.tol.atol * g**t for t in range(len(envelope))]
        print(f"{name}: |expected| max {expected.abs().max():.3f}, rms "
              f"{expected.pow(2).mean().sqrt():.3f}; bound {case.tol.describe()}")
        for label, steps in measured.items():
            ratio = max(d / a for d, a in zip(steps, atol_t, strict=True))
            print(f"  {label:12s} {show(steps)}  max diff/atol_t {ratio:.3f}")
        fitted = (envelope[-1] / max(envelope[0], 1e-30)) ** (1 / max(len(envelope) - 1, 1))
        worst = max(e / g**t for t, e in enumerate(envelope))
        print(f"  envelope growth per step {fitted:.3f}; with growth {g:g}: suggested atol "
              f"{round_up(SAFETY * worst):.0e} ({SAFETY} x {worst:.2e}); current atol is "
              f"{case.tol.atol / worst:.0f} x the envelope")


if __name__ == "__main__":
    main(sys.argv[1:])
