"""Golden tests against OpenSTL's own outputs: PredRNN++, MIM, PredRNN-V2, MAU, SimVP (gSTA),
TAU, SimVP (IncepU), PhyDNet and E3D-LSTM.

Each fixture (tests/fixtures/<name>_golden.npz; tests/fixtures/README.md says how each was made)
holds OpenSTL's state dict under OpenSTL's names, an input and OpenSTL's eval-mode outputs with
no teacher forcing. We build our model at the same configuration, map every OpenSTL tensor onto
our state dict (all of ours set, none of theirs left over but the ones OpenSTL builds and never
reads, or stores twice), run it the same way and compare within the float32 bound derived in
bench/verify/golden.py (the cases themselves are in bench/verify/cases/, shared with
``run_bench.py verify``). E3D-LSTM is compared with its switches at OpenSTL's behaviour
(``memory_flow=False, openstl_compat=True``); its default departs from OpenSTL on purpose.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.verify.cases import openstl_rnn, simvp
from bench.verify.cases.openstl_rnn import e3dlstm, phydnet_names
from bench.verify.golden import FIXTURES, RTOL, check_case, compare, load_fixture, run_case
from models.phydnet import moment_matrix

CASES = {**openstl_rnn.OPENSTL_RNN, **simvp.CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_openstl_outputs(name):
    expected_steps = 10 if name.startswith(("simvp", "tau")) else 19  # one-shot vs recurrent
    report = check_case(CASES[name], name)
    assert len(report["per_step"]) == expected_steps


def test_phydnet_fixture_aliases_and_moments():
    """The fixture's second names are the same tensors; K2M's M is our moment matrix; and our
    moment loss (weight 1) is OpenSTL's constraint term, sum_b MSE(K2M(w[:, b]), constraints)."""
    fixture = load_fixture("phydnet_golden.npz")
    mapping, unused = phydnet_names()
    for name in unused - {n for n in unused if n.startswith("k2m.")}:
        assert np.array_equal(fixture.weights[name], fixture.weights[name[len("encoder."):]]), name
    for m in ("_M0", "_M1"):
        assert torch.equal(torch.from_numpy(fixture.weights[f"k2m.{m}"]), moment_matrix())
    core = CASES["phydnet"].build()
    run_case(CASES["phydnet"], core=core)  # loads the weights
    expected = float(np.load(FIXTURES / "phydnet_golden.npz")["expected_moment_loss"])
    got = core.auxiliary_loss([]).item()
    print(f"\n[golden phydnet moment loss] ours {got:.8g}, OpenSTL {expected:.8g}")
    assert abs(got - expected) <= RTOL * abs(expected)


def test_e3dlstm_default_departs_from_openstl():
    """At its defaults (memory flowing, TensorFlow's recall and padding) our E3D-LSTM computes
    another function than OpenSTL's, on purpose (models/e3dlstm.py): the outputs differ by
    far more than rounding, so the golden test above needs both switches."""
    case = CASES["e3dlstm"]
    got, expected = run_case(case, core=e3dlstm(openstl=False))
    report = compare(got, expected, case.tol)
    print(f"\n[e3dlstm at defaults vs OpenSTL] max |diff| {report['max_diff']:.3e}")
    assert report["max_diff"] > 0.1
