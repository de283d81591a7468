"""The project's imports run one way: no cycles, no import of a higher layer, no private names
of another module (bench.tools.layers reads them from the source)."""
from bench.tools import layers


def test_the_project_imports_run_one_way():
    found = layers.problems()
    assert found == [], "\n".join(found)


def test_every_module_is_in_a_layer():
    assert all(layers.layer(name) for name in layers.project_modules())


def _write(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cycle_an_upward_import_and_a_private_name_are_each_found(tmp_path):
    _write(tmp_path, {
        "bench/__init__.py": "",
        "bench/runtime/__init__.py": "",
        "bench/runtime/clock.py": "def now():\n    from ..grid import cells  # upward\n",
        "bench/grid/__init__.py": "",
        "bench/grid/cells.py": "from ..runtime.clock import _tick\nfrom . import runner\n",
        "bench/grid/runner.py": "from .cells import run\n",
        "bench/config.py": "",
        "bench/report/__init__.py": "from ..config import TrainConfig\n",
    })
    found = "\n".join(layers.problems(tmp_path))
    assert "import cycle among: bench.grid.cells, bench.grid.runner, bench.runtime.clock" in found
    assert ("bench/runtime/clock.py:2: bench.runtime.clock (bench.runtime) imports "
            "bench.grid.cells (bench.grid), a higher layer") in found
    assert "bench.grid.cells imports bench.runtime.clock._tick, a private name" in found
    assert ("bench/report/__init__.py:1: bench.report imports bench.config; bench.report imports "
            "only bench.store, bench.runtime") in found
    assert len(found.splitlines()) == 4


def test_a_private_attribute_of_an_imported_module_is_found(tmp_path):
    _write(tmp_path, {
        "bench/__init__.py": "",
        "bench/runtime/__init__.py": "",
        "bench/runtime/clock.py": "_ZERO = 0\n",
        "bench/grid/__init__.py": "",
        "bench/grid/cells.py": "from ..runtime import clock\nstart = clock._ZERO\n",
    })
    assert layers.problems(tmp_path) == [
        "bench/grid/cells.py:2: bench.grid.cells reads bench.runtime.clock._ZERO, a private name"]
