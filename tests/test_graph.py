"""The captured training step (bench.train.graph), checked on the CPU with the capture stubbed
out: the warm-up changes nothing that is trained, the static inputs carry each batch and mask, a
restored checkpoint re-captures, what cannot be captured falls back with one line; the mask of
a captured step is always a tensor (all-False: the same values and gradients as none)."""
import dataclasses

import pytest
import torch

import bench.train.graph as graph
import bench.train.loop as loop
import models
from bench.config import get_preset
from bench.grid.request import load_data, model_config
from bench.runtime.device import configure_device
from bench.runtime.graphs import graph_fallback
from bench.train.loop import Trainer, TrainResult
from bench.train.sampling import static_mask

SMOKE = get_preset("smoke")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_data(SMOKE.data, None, str(tmp_path_factory.mktemp("cache")))


def build(name, data, **overrides):
    torch.manual_seed(0)
    return models.create_model(name, **{**model_config(name, SMOKE, data, {}), **overrides})


def config(**changes):
    return dataclasses.replace(SMOKE.train, **changes)


class StandIn:
    """The capture stubbed out: a 'capture' records the iteration without running it (as CUDA
    does), a 'replay' runs it on the static inputs; ``fail`` makes the capture raise."""

    def __init__(self, fail=False):
        self.fail, self.warmed = fail, 0

    def warm_up(self, body, iterations):
        for _ in range(iterations):
            body()
        self.warmed += iterations

    def capture(self, body):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        return body

    def replay(self, handle):
        return handle()


@pytest.fixture
def stubbed(monkeypatch):
    """Capture allowed on the CPU, with the stand-in for the CUDA calls (``stubbed.fail``: the
    next Trainers' captures raise; ``stubbed.backends``: the stand-ins made)."""
    stubs = type("Stubs", (), {"fail": False, "backends": []})()

    def make():
        stubs.backends.append(StandIn(stubs.fail))
        return stubs.backends[-1]

    monkeypatch.setattr(loop, "graph_fallback", lambda *args: None)
    monkeypatch.setattr(graph, "CudaGraphs", make)
    return stubs


def run_steps(trainer, data, steps=5):
    """``steps`` iterations on the seeded stream (linear sampling ends at iteration 4 of the
    smoke preset: real masks, then all-False ones); the losses and the parameters after."""
    batches, generator = data.train_batches(2, seed=1), torch.Generator().manual_seed(1)
    losses = [trainer.training_step(next(batches), step, generator).item() for step in range(steps)]
    return losses, [p.detach().clone() for p in trainer.model.parameters()]


def test_the_warm_up_before_a_capture_changes_nothing_that_is_trained(data, tmp_path, stubbed):
    name = "convlstm"
    cfg = config(cuda_graph=True, batch_size=2)
    warmed = Trainer(build(name, data), data, cfg, CPU, 0, tmp_path / "a")
    cold = Trainer(build(name, data), data, cfg, CPU, 0, tmp_path / "b")
    cold.captured.warmup = 0  # nothing to restore: the reference
    got, want = run_steps(warmed, data), run_steps(cold, data)
    assert stubbed.backends[0].warmed == graph.WARMUP_ITERATIONS and warmed.captured.captures == 1
    assert got[0] == want[0]
    for p, q in zip(got[1], want[1], strict=True):
        assert torch.equal(p, q)
    # and it trains what eager steps train (a float learning rate there: rounding apart)
    eager = Trainer(build(name, data), data, config(batch_size=2), CPU, 0, tmp_path / "c")
    losses, params = run_steps(eager, data)
    assert got[0] == pytest.approx(losses, rel=1e-4)
    for p, q in zip(got[1], params, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


def test_the_replayed_step_reads_each_batch_and_mask_and_returns_its_own_loss(data, tmp_path,
                                                                              stubbed):
    trainer = Trainer(build("convlstm", data), data, config(cuda_graph=True), CPU, 0, tmp_path)
    seen = []
    body = trainer.captured.body
    trainer.captured.body = lambda f, m: seen.append((f.clone(), m.clone())) or body(f, m)
    batches = data.train_batches(2, seed=1)
    first, second = next(batches), next(batches)
    losses = [trainer.training_step(first, 0, torch.Generator().manual_seed(0)),
              trainer.training_step(second, 10, torch.Generator().manual_seed(0))]
    assert torch.equal(seen[-1][0], second) and not seen[-1][1].any()  # eta 0 at step 10
    assert torch.equal(seen[-2][0], first) and seen[-2][1].shape == (2, SMOKE.data.out_len - 1)
    assert losses[0].item() != losses[1].item()  # copies, not the graph's one output


def test_a_restored_checkpoint_is_captured_again(data, tmp_path, stubbed):
    cfg = config(cuda_graph=True, epochs=1, steps_per_epoch=2)
    trainer = Trainer(build("convlstm", data), data, cfg, CPU, 0, tmp_path)
    assert trainer.fit(progress=False).cuda_graph == "captured"  # recorded in the record's train
    assert trainer.captured.captures == 1
    assert trainer.captured.handle is None  # best.pt loaded at the end: the graph is dropped
    frames = next(data.train_batches(2, seed=1))
    trainer.training_step(frames, 0, torch.Generator())
    assert trainer.captured.captures == 2
    trainer._resume(TrainResult())  # last.pt restored into the model and optimizer
    assert trainer.captured.handle is None
    trainer.training_step(frames, 0, torch.Generator())
    assert trainer.captured.captures == 3


def test_a_failed_capture_runs_eager_with_one_line_and_the_state_restored(data, tmp_path,
                                                                          stubbed):
    stubbed.fail = True
    logged = []
    cfg = config(cuda_graph=True, batch_size=2)
    failing = Trainer(build("convlstm", data), data, cfg, CPU, 0, tmp_path / "a", log=logged.append)
    stubbed.fail = False
    cold = Trainer(build("convlstm", data), data, cfg, CPU, 0, tmp_path / "b")
    cold.captured.warmup = 0
    got, want = run_steps(failing, data), run_steps(cold, data)
    assert failing.captured.captures == 0 and "capturing" in failing.captured.failed
    assert len(logged) == 1 and "capture failed, eager steps" in logged[0]
    assert got[0] == want[0]
    assert failing.graph_status().startswith("eager: capture failed: RuntimeError")
    assert cold.graph_status() == "captured"


def test_what_cannot_be_captured_falls_back_with_one_line_and_is_recorded(data, tmp_path):
    logged = []
    trainer = Trainer(build("convlstm", data), data, config(cuda_graph=True), CPU, 0, tmp_path,
                      log=logged.append)
    assert trainer.captured is None and isinstance(trainer.optimizer.param_groups[0]["lr"], float)
    assert logged == ["   model: cuda_graph off, eager steps: device cpu: CUDA graphs need a CUDA "
                      "device"]
    assert trainer.graph_status() == "eager: device cpu: CUDA graphs need a CUDA device"
    assert Trainer(build("convlstm", data), data, config(), CPU, 0, tmp_path).graph_status() is None
    cuda = torch.device("cuda")  # a device name needs no GPU
    assert graph_fallback(cuda, config(), parallel=False) is None
    assert graph_fallback(cuda, config(grad_clip=1.0), parallel=False) is None  # captured
    assert "amp=fp16" in graph_fallback(cuda, config(amp="fp16"), parallel=False)
    assert "reduce-overhead" in graph_fallback(
        cuda, config(compile=True, compile_mode="reduce-overhead"), parallel=False)
    assert graph_fallback(cuda, config(compile=True), parallel=False) is None
    assert "DDP" in graph_fallback(cuda, config(), parallel=True)
    assert "beta1" in graph_fallback(cuda, config(lr_schedule="onecycle"), parallel=False)
    settings = configure_device(CPU, config(cuda_graph=True))
    assert settings["cuda_graph"] is False and "CUDA device" in settings["cuda_graph_fallback"]
    assert configure_device(CPU, config())["cuda_graph_fallback"] is None


@pytest.mark.parametrize("name", ["modernn", "convlstm", "predrnn", "mau", "saconvlstm"])
def test_an_all_false_mask_gives_the_values_and_gradients_of_no_mask(name, data):
    model = build(name, data).double()
    in_len, out_len = SMOKE.data.in_len, SMOKE.data.out_len
    frames = next(data.train_batches(2, seed=0)).double()
    mask = static_mask(None, 2, out_len, CPU)
    assert mask.shape == (2, out_len - 1) and not mask.any()
    results = []
    for truth_mask in (None, mask):
        model.zero_grad(set_to_none=True)
        pred = model(frames, in_len, out_len, truth_mask)
        (pred.future.square().sum() + pred.warmup.abs().sum()).backward()
        results.append((pred.future.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1], strict=True):
        assert torch.equal(a, b)
    drawn = torch.ones(2, out_len - 1, dtype=torch.bool)
    assert static_mask(drawn, 2, out_len, CPU) is drawn
