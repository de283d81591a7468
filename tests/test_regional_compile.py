"""Regional compilation (bench.runtime.compile): each recurrent model's ``step`` is compiled, and
starts from an explicit zero state (``initial_state``) with the same outputs as from ``None``, so
the step is traced once for t = 0 and the steps after it."""
import pytest
import torch

import models
from bench.config import get_preset
from bench.grid.request import model_config
from bench.runtime.compile import compile_model
from models.base import RecurrentPredictor
from models.patch import patchify

SMOKE = get_preset("smoke")
DATA = type("Data", (), {"channels": 1, "height": 32, "width": 32, "in_len": 4, "out_len": 4})


def build(name):
    torch.manual_seed(0)
    return models.create_model(name, **model_config(name, SMOKE, DATA, {})).double()


def core(model):
    return next(m for m in model.modules() if isinstance(m, RecurrentPredictor))


def flat(tree):
    if isinstance(tree, torch.Tensor):
        return [tree]
    return [t for item in tree for t in flat(item)]


@pytest.mark.parametrize("name", ["modernn", "convlstm", "predrnn"])
def test_the_explicit_zero_state_gives_the_outputs_of_none(name):
    model = build(name)
    cell = core(model)
    frames = torch.rand(2, 8, 1, 32, 32, dtype=torch.float64)
    frame = patchify(frames, getattr(model, "patch", 1))[:, 0]  # what the core's step sees
    zero = cell.initial_state(frame)
    assert all(not t.any() for t in flat(zero))
    assert len({id(t) for t in flat(zero)}) == len(flat(zero))  # no aliasing: one graph
    out_none, state_none = cell.step(frame, None)
    out_zero, state_zero = cell.step(frame, zero)
    assert torch.equal(out_none, out_zero)
    for a, b in zip(flat(state_none), flat(state_zero), strict=True):
        assert torch.equal(a, b)
    # the whole rollout, values and gradients, with the zero state as a grad-requiring leaf
    results = []
    for requires in (False, True):
        cell.state_requires_grad = requires
        model.zero_grad(set_to_none=True)
        future = model(frames, 4, 4).future
        future.sum().backward()
        results.append((future.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1], strict=True):
        assert torch.equal(a, b)


def test_a_compiled_step_is_traced_once_from_the_first_step_on(monkeypatch):
    graphs = []

    def counting(gm, example_inputs):  # a torch.compile backend that runs the traced graph
        graphs.append(gm)
        return gm.forward

    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real(fn, backend=counting,
                                                                dynamic=kw.get("dynamic")))
    torch._dynamo.reset()
    model = compile_model(build("convlstm").float())
    frames = torch.rand(2, 8, 1, 32, 32)
    model(frames, 4, 4).future.sum().backward()
    # t = 0 .. 3 read the input frames (one graph: no None-state one), t = 4 .. 6 the model's
    # own predictions, which require grad (a second graph); nothing more on a second call
    assert len(graphs) == 2
    model(frames, 4, 4, torch.rand(2, 3) < 0.5).future.sum().backward()
    assert len(graphs) == 2
    torch._dynamo.reset()
