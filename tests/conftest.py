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
