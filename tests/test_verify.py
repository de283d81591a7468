"""``run_bench.py verify``: its rows for each fast path (registered here, since models/fast.py may
offer none yet), a broken fast path failing, fixtures at another configuration, bad input."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from bench.cli import verify as cli
from bench.verify.cases.transformers import predformer_names
from bench.verify.golden import FIXTURES
from bench.verify.train_step import FILES
from models import fast
from models.convlstm import ConvLSTM
from models.modernn import MoDeRNN

ROOT = Path(__file__).resolve().parents[1]


def offer(monkeypatch, cls, paths: dict[str, float]):
    """``cls`` offers fast paths ``paths`` (name -> factor its outputs get when it is on: 1.0 is
    an exact one, anything else a broken one)."""
    monkeypatch.setattr(fast, "FAST_PATHS", {name: "a test's fast path" for name in paths})
    monkeypatch.setattr(cls, "fast_paths", tuple(paths), raising=False)
    original = cls.step

    def set_fast_path(self, name, on):
        self.factors = {**getattr(self, "factors", {}), name: paths[name] if on else 1.0}

    def step(self, frame, state):
        out, state = original(self, frame, state)
        return out * float(np.prod(list(getattr(self, "factors", {}).values()))), state

    monkeypatch.setattr(cls, "set_fast_path", set_fast_path, raising=False)
    monkeypatch.setattr(cls, "step", step)


def rows_of(capsys) -> dict[str, str]:
    """fast paths -> result, from the printed table."""
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    return {cells[1]: cells[-1] for cells in
            ([c.strip() for c in line.strip("|").split(" | ")] for line in lines)}


def test_each_fast_path_alone_then_all_and_a_broken_one_fails(monkeypatch, capsys):
    offer(monkeypatch, ConvLSTM, {"exact_one": 1.0, "broken_one": 1.001})
    assert cli.main(["--models", "convlstm"]) == 1
    assert rows_of(capsys) == {"eager": "pass", "exact_one": "pass", "broken_one": "FAIL",
                               "all: exact_one + broken_one": "FAIL"}


def test_exact_fast_paths_pass(monkeypatch, capsys):
    offer(monkeypatch, ConvLSTM, {"exact_one": 1.0})
    assert cli.main(["--models", "convlstm"]) == 0
    assert rows_of(capsys) == {"eager": "pass", "exact_one": "pass"}


def test_training_step_rows_use_the_fast_paths(monkeypatch, capsys):
    offer(monkeypatch, MoDeRNN, {"broken_one": 1.1})
    assert cli.main(["--fixture", str(FIXTURES / FILES[torch.float32])]) == 1
    assert rows_of(capsys) == {"eager": "pass", "broken_one": "FAIL"}


def predformer_file(tmp_path: Path, scale: float = 1.0) -> Path:
    """A file in the predformer layout at another configuration (dim 16, 3 heads, Ndepth 1, 4 in
    and 4 out), made with our own model: verify must build that configuration to match it."""
    cfg = dict(height=16, width=16, num_channels=1, pre_seq=4, after_seq=4, patch_size=4, dim=16,
               heads=3, dim_head=8, scale_dim=2, depth=1, Ndepth=1)
    torch.manual_seed(0)
    model = models.create_model("predformer", channels=1, height=16, width=16, in_len=4, patch=4,
                                dim=16, heads=3, dim_head=8, scale_dim=2, depth=1, Ndepth=1).eval()
    frames = torch.rand(2, 4, 1, 16, 16)
    with torch.no_grad():
        expected = model(frames, 4, 4).future * scale
    state = model.state_dict()
    mapping, _ = predformer_names(ndepth=1, depth=1)
    arrays = {f"weights/{theirs}": state[ours].numpy() for theirs, ours in mapping.items()}
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays, input=frames.numpy(), expected=expected.numpy(),
             config=repr({"model_config": cfg}), kind="predformer-forward/a-test")
    return path


def test_a_fixture_at_another_configuration(tmp_path, capsys):
    assert cli.main(["--fixture", str(predformer_file(tmp_path))]) == 0
    assert rows_of(capsys) == {"eager": "pass"}
    assert cli.main(["--fixture", str(predformer_file(tmp_path, scale=1.01))]) == 1


@pytest.mark.parametrize("argv, needle", [
    (["--fixture", "no/such.npz"], "no such fixture file: .*no/such.npz"),
    (["--models", "convlstn"], "no check for model.*convlstn.*convlstm"),
    (["--device", "tpu"], "unknown device 'tpu'"),
])
def test_bad_input_is_one_clear_error(argv, needle, capsys):
    assert cli.main(argv) == 2
    assert re.search(needle, capsys.readouterr().err)


def test_a_file_of_no_known_layout(tmp_path, capsys):
    path = tmp_path / "other.npz"
    np.savez(path, input=np.zeros(1))
    assert cli.main(["--fixture", str(path)]) == 2
    assert "not a known golden fixture" in capsys.readouterr().err


def test_the_command_runs(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "run_bench.py"), "verify", "--models",
                             "convlstm"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| convlstm_golden.npz (convlstm) | eager |" in result.stdout
    assert "| convlstm_golden.npz (convlstm) | fused_convs |" in result.stdout  # its fast path
    assert "2 of 2 rows passed" in result.stdout


def test_compile_rows_compile_the_model(monkeypatch, capsys):
    """--compile adds a row that runs through bench.runtime.compile (a spy here: compiling takes
    minutes), then one with every path together."""
    import bench.verify.paths as paths

    compiled = []
    monkeypatch.setattr(paths, "compile_model", lambda model: compiled.append(type(model).__name__))
    offer(monkeypatch, ConvLSTM, {"exact_one": 1.0})
    assert cli.main(["--models", "convlstm", "--compile"]) == 0
    assert list(rows_of(capsys)) == ["eager", "exact_one", "compile", "all: exact_one + compile"]
    assert compiled == ["ConvLSTM", "ConvLSTM"]


def test_training_level_paths():
    from bench.config import TrainConfig
    from bench.verify.paths import train_paths

    assert train_paths(torch.device("cpu"), True, True) == ["compile"]
    assert train_paths(torch.device("cpu"), False, True) == []
    graphs = "cuda_graph" in TrainConfig.__dataclass_fields__
    assert train_paths(torch.device("cuda"), False, True) == (["cuda_graph"] if graphs else [])
    assert train_paths(torch.device("cuda"), False, False) == []  # not for golden rollouts
