"""The CUDA paths: skipped without a GPU (CI has none); run on a lent GPU by
``tests/gpu/run_gpu_checks.sh``, whose output is committed under ``results/gpu/``."""
import dataclasses

import pytest
import torch

import models
from bench.config import get_preset
from bench.cost.profiling import measure_speed
from bench.evaluation.loop import evaluate
from bench.grid.request import load_data, model_config
from bench.runtime.memory import PeakMemory
from bench.train.loop import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
SMOKE = get_preset("smoke")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_data(SMOKE.data, None, str(tmp_path_factory.mktemp("cache")))


def build(name, data):
    torch.manual_seed(0)
    return models.create_model(name, **model_config(name, SMOKE, data, {}))


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_training_on_cuda_in_each_precision(data, tmp_path, amp):
    cfg = dataclasses.replace(SMOKE.train, amp=amp)
    trainer = Trainer(build("modernn", data), data, cfg, CUDA, 0, tmp_path)
    assert trainer.optimizer.defaults.get("fused")  # the fused CUDA AdamW
    result = trainer.fit(progress=False)
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in result.history)
    assert result.iteration_s is None or result.iteration_s > 0


def test_cuda_and_cpu_metrics_agree(data):
    model = build("convlstm", data).eval()
    on_cpu = evaluate(model, data.test, data.in_len, data.out_len, torch.device("cpu"))
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    on_gpu = evaluate(model.to(CUDA), data.test, data.in_len, data.out_len, CUDA)
    for key in ("mse", "mae", "ssim", "psnr"):
        assert on_gpu["headline"][key] == pytest.approx(on_cpu["headline"][key], rel=1e-3)


def test_cuda_peak_memory_and_speed(data):
    with PeakMemory(CUDA) as memory:
        x = torch.empty(64, 2**20, device=CUDA)  # 256 MiB
        del x
    assert memory.peak_bytes >= 256 * 2**20
    speed = measure_speed(build("modernn", data), data, SMOKE.train, CUDA, 4, repeats=2)
    assert speed["train_seq_s"] > 0 and speed["train_peak_mb"] > 0 and speed["peak_tflops"] > 1


def test_compiled_step_on_cuda_matches_eager(data):
    from bench.runtime.compile import compile_model

    eager = build("modernn", data).to(CUDA).eval()
    compiled = compile_model(build("modernn", data).to(CUDA).eval())
    frames = next(data.train_batches(4, seed=0)).to(CUDA)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    with torch.no_grad():
        want = eager(frames, data.in_len, data.out_len).future
        got = compiled(frames, data.in_len, data.out_len).future
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["convlstm", "modernn"])
def test_the_captured_step_trains_as_the_eager_one_on_cuda(data, tmp_path, name):
    """The real capture: replays follow each batch, mask and learning rate (a budget's cosine,
    written in place) as eager steps do; no capture error, no synchronisation inside it."""
    from bench.train.optim import set_lr

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    cfg = dataclasses.replace(SMOKE.train, batch_size=2, tf32=False)
    runs = []
    for graphed in (False, True):
        logged = []
        trainer = Trainer(build(name, data).to(CUDA), data,
                          dataclasses.replace(cfg, cuda_graph=graphed), CUDA, 0,
                          tmp_path / str(graphed), log=logged.append)
        batches, generator = data.train_batches(2, seed=1), torch.Generator().manual_seed(1)
        losses = []
        torch.cuda.set_sync_debug_mode("warn" if graphed else 0)
        for step in range(6):
            set_lr(trainer.optimizer, 1e-3 / (step + 1))
            losses.append(trainer.training_step(next(batches).to(CUDA), step, generator))
        torch.cuda.set_sync_debug_mode(0)
        if graphed:
            assert logged == [] and trainer.captured.captures == 1 and not trainer.captured.failed
        runs.append(([x.item() for x in losses], [p.detach().clone() for p in trainer.model.parameters()]))
    assert runs[1][0] == pytest.approx(runs[0][0], rel=1e-4)
    for p, q in zip(runs[1][1], runs[0][1], strict=True):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-5)
