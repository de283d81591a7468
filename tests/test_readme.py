"""The README's examples work when copied: its own-data TOML loads a file of the layout it names."""
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import tomllib

from datasets import load_sequence_dataset

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_toml() -> str:
    section = README.read_text().split("### Your own data", 1)[1]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


def write_storms(path: Path, n: int = 10, t: int = 20) -> None:
    with h5py.File(path, "w") as f:
        f["frames"] = np.random.default_rng(0).random((n, t, 1, 8, 8)).astype(np.float32)
        table = np.zeros(n, dtype=[("id", "i4"), ("speed", "f4")])
        table["id"] = np.arange(n)
        f["sequences"] = table


@pytest.mark.parametrize("uncomment_table", [False, True])
def test_readme_toml_example_loads_as_written(tmp_path, uncomment_table):
    text = readme_toml()
    assert tomllib.loads(text)["path"] == "storms.h5"
    if uncomment_table:  # the optional line works too, once the file holds that table
        text = text.replace('# table = "sequences"', 'table = "sequences"')
        assert tomllib.loads(text)["table"] == "sequences"
    write_storms(tmp_path / "storms.h5")
    (tmp_path / "storms.toml").write_text(text)
    data = load_sequence_dataset(tmp_path / "storms.toml")
    assert data.name == "storms" and (data.channels, data.height, data.width) == (1, 8, 8)
    assert len(data.test) >= 1 and len(data.val) >= 1
    assert ("sequence_attrs" in data.describe()) == uncomment_table


def test_readme_lists_what_a_run_writes():
    section = README.read_text().split("## Reading the results", 1)[1]
    for name in ("records.jsonl", "summary.md", "summary.csv", "summary.tex", "per_frame.csv",
                 "per_frame.png", "pareto.png", "loss_curves.png", "cost_bars.png", "README.md",
                 ".gif", "PDF", "best.pt"):
        assert name in section, name
    assert "mse_vs_flops" not in README.read_text()


def test_readme_fidelity_table_names_every_model():
    """Every registered model has its line in the Fidelity section (a new model needs one)."""
    from models.registry import list_models

    section = README.read_text().split("## Fidelity", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in list_models() if f"`{name}`" not in section]
    assert not missing, f"models without a Fidelity entry in README.md: {missing}"
    for test_file in set(re.findall(r"`(test_\w+\.py)`", section)):
        assert (README.parent / "tests" / test_file).exists(), test_file
