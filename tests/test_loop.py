"""The training loop's GPU-minded mechanics, checked on the CPU: one scheduled-sampling mask for
both passes, losses read every ``sync_every`` iterations, time-based checkpoints, compilation."""
import dataclasses
import re

import pytest
import torch

import models
from bench.config import get_preset
from bench.grid.request import load_data, model_config
from bench.train.loop import Trainer

SMOKE = get_preset("smoke")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_data(SMOKE.data, None, str(tmp_path_factory.mktemp("cache")))


def build(name, data, **overrides):
    torch.manual_seed(0)
    config = {**model_config(name, SMOKE, data, {}), **overrides}
    return models.create_model(name, **config)


def config(**changes):
    return dataclasses.replace(SMOKE.train, **changes)


def test_the_reversed_pass_reuses_the_forward_pass_mask(data, tmp_path):
    model = build("convlstm", data)
    masks = []
    forward = model.forward

    def spy(frames, in_len, out_len, truth_mask=None):
        masks.append(truth_mask)
        return forward(frames, in_len, out_len, truth_mask)

    model.forward = spy
    # eta = 0.5 at this step: two independent draws of 2 x 3 choices would differ 98% of the time
    cfg = config(sampling_steps=2, batch_size=2)
    trainer = Trainer(model, data, cfg, torch.device("cpu"), 0, tmp_path)
    frames = next(data.train_batches(2, seed=0))
    for step in range(3):  # three iterations, three chances for a second draw to differ
        trainer.training_step(frames, 1, torch.Generator().manual_seed(step))
    assert len(masks) == 6 and all(m is not None for m in masks)
    for forward_mask, reversed_mask in zip(masks[::2], masks[1::2], strict=True):
        assert torch.equal(forward_mask, reversed_mask)


def fit(data, tmp_path, **changes):
    model = build("convlstm", data)
    cfg = config(epochs=2, steps_per_epoch=5, **changes)
    trainer = Trainer(model, data, cfg, torch.device("cpu"), 0, tmp_path)
    return trainer, trainer.fit(progress=False), model


def test_losses_are_read_every_sync_every_iterations_with_the_same_result(data, tmp_path,
                                                                          monkeypatch):
    reads = []
    original = Trainer._read_losses
    monkeypatch.setattr(Trainer, "_read_losses",
                        lambda self, pending, *a: (reads.append(len(pending)),
                                                   original(self, pending, *a)))
    _, every_step, model_a = fit(data, tmp_path / "a", sync_every=1)
    assert reads == [1] * 10
    reads.clear()
    _, batched, model_b = fit(data, tmp_path / "b", sync_every=3)
    assert reads == [3, 2] * 2  # and at each epoch's end
    assert batched.history == every_step.history
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)


def test_time_based_checkpoints_mid_epoch(data, tmp_path, monkeypatch):
    saved = []
    original = Trainer._save
    monkeypatch.setattr(Trainer, "_save", lambda self, name, epoch, result, batch=0, **k: (
        saved.append((name, epoch, batch)), original(self, name, epoch, result, batch, **k)))
    fit(data, tmp_path / "never", checkpoint_every_seconds=0)
    assert all(batch == 0 for _, _, batch in saved)
    saved.clear()
    fit(data, tmp_path / "always", checkpoint_every_seconds=1e-9)
    mid_epoch = [(epoch, batch) for name, epoch, batch in saved if batch]
    assert mid_epoch == [(e, b) for e in (0, 1) for b in range(1, 5)]


def test_a_resumed_run_counts_the_wall_time_of_every_part(data, tmp_path):
    trainer, first, _ = fit(data, tmp_path, checkpoint_every_seconds=0)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    state["epoch"], state["elapsed_s"] = 1, 1000.0  # as if killed after epoch 1, 1000 s in
    torch.save(state, tmp_path / "last.pt")
    logged = []
    model = build("convlstm", data)
    resumed = Trainer(model, data, trainer.cfg, torch.device("cpu"), 0, tmp_path,
                      name="convlstm", log=logged.append).fit(progress=False)
    assert resumed.parts == 2 and resumed.earlier_parts_s == 1000.0
    assert 1000.0 < resumed.wall_s < 1000.0 + 10 * first.wall_s
    assert logged[0] == f"   resuming convlstm seed 0 from epoch 2, iteration 0 ({tmp_path / 'last.pt'})"
    assert all(": epoch " in line for line in logged[1:])  # no bar: progress lines (below)


def test_without_a_bar_each_epoch_prints_loss_rate_and_eta(data, tmp_path):
    """--no-progress: a line per validation (here each epoch) and per tenth of the run."""
    logged = []
    cfg = config(epochs=2, steps_per_epoch=5)
    Trainer(build("convlstm", data), data, cfg, torch.device("cpu"), 0, tmp_path,
            name="convlstm", log=logged.append).fit(progress=False)
    pattern = (r"   convlstm seed 0: epoch (\d)/2(, iteration (\d)/5)?(, loss [0-9.e+-]+)?, "
               r"[0-9.e+-]+ it/s, (ETA \d+s|done)")
    matches = [re.fullmatch(pattern, line) for line in logged]
    assert all(matches), logged
    ends = [m for m in matches if m.group(2) is None]
    assert [m.group(1) for m in ends] == ["1", "2"] and all(m.group(4) for m in ends)  # a loss
    assert logged[-1].endswith("done") and "ETA" in logged[0]
    assert len(logged) == 10  # one per iteration: a tenth of 10 iterations is 1
    logged.clear()
    Trainer(build("convlstm", data), data, config(epochs=1, steps_per_epoch=2),
            torch.device("cpu"), 0, tmp_path / "bar",
            name="convlstm", log=logged.append).fit(progress=True)
    assert logged == []  # with a bar, no lines


@pytest.mark.slow
def test_compiled_step_matches_eager(data, tmp_path):
    from bench.runtime.compile import compile_model

    eager = build("convlstm", data).eval()
    compiled = compile_model(build("convlstm", data).eval())
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    frames = next(data.train_batches(2, seed=0))
    with torch.no_grad():
        want = eager(frames, data.in_len, data.out_len).future
        got = compiled(frames, data.in_len, data.out_len).future
    # Fused kernels reorder float32 sums: differences of a few ulps per step, over 7 steps.
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_the_loop_benchmark_runs_on_a_cpu(capsys):
    from bench.tools.loop_bench import main

    assert main(["--device", "cpu", "--size", "smoke", "--models", "convlstm", "--iterations",
                 "1", "--repeats", "1", "--modes", "eager-fp32-sync", "bf16"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| convlstm")]
    assert len(rows) == 2 and "| 1.00x |" in rows[0] and "failed" not in "".join(rows)


def test_the_loop_benchmark_modes_are_cumulative():
    from bench.tools.loop_bench import plan_modes

    planned = dict(plan_modes(["bf16", "compile", "eager", "cuda_graph", "reduce-overhead"]))
    assert list(planned) == ["eager", "cuda_graph", "compile", "bf16", "reduce-overhead"]
    assert planned["cuda_graph"] == {"cuda_graph": True}
    assert planned["compile"] == {"cuda_graph": True, "fused_norm": True, "fused_convs": True,
                                  "compile": True}
    assert planned["bf16"] == {**planned["compile"], "amp": "bf16"}  # on top of the last
    assert planned["reduce-overhead"] == {"compile": True, "compile_mode": "reduce-overhead"}
    assert dict(plan_modes(["cuda_graph", "channels_last"]))["channels_last"] == {
        "cuda_graph": True, "channels_last": True}


def test_the_loop_benchmark_skips_what_a_cpu_cannot_run_and_profiles(capsys, tmp_path):
    from bench.tools.loop_bench import main

    assert main(["--device", "cpu", "--size", "smoke", "--models", "convlstm", "--iterations",
                 "1", "--repeats", "1", "--modes", "eager", "cuda_graph", "channels_last",
                 "--profile", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| convlstm")]
    assert len(rows) == 3 and "| eager |" in rows[0] and "| 1.00x |" in rows[0]
    assert "| +cuda_graph | skipped: device cpu: CUDA graphs need a CUDA device |" in rows[1]
    assert "| +channels_last |" in rows[2] and "x |" in rows[2]
    assert "convlstm: fastest " in out
    profile = (tmp_path / "profile_convlstm_eager.txt").read_text()
    assert "kernel_launches: 0" in profile and "aten::" in profile
