import sys
from pathlib import Path

import pytest

# The harness runs from its checkout; make the root importable however pytest is started.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def temporary_model():
    """Registers throw-away models for one test: ``temporary_model(name, make) -> name``."""
    from models import registry

    registry._discover()
    added = []

    def add(name, make):
        registry.register_model(name, family="test", paper="none")(
            lambda channels=1, height=64, width=64: make())
        added.append(name)
        return name

    yield add
    for name in added:
        registry._REGISTRY.pop(name, None)


@pytest.fixture
def no_profile(monkeypatch):
    """Cost profiling stubbed out (parameters only): a CLI run in seconds."""
    import bench.grid.costs

    monkeypatch.setattr(bench.grid.costs, "profile_model", lambda model, *a, **k: {
        "params": sum(p.numel() for p in model.parameters())})


@pytest.fixture
def run(tmp_path, no_profile):
    """``run(*args) -> exit code``: the CLI at the smoke preset in this process, profiling
    stubbed, writing under ``tmp_path`` (a test module may define its own ``run``)."""
    from bench.cli.main import main

    def run_cli(*args):
        return main(["--preset", "smoke", "--out", str(tmp_path / "results"),
                     "--cache-dir", str(tmp_path / "cache"), "--no-progress", *args])
    return run_cli
