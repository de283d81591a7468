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


def options_table() -> str:
    section = README.read_text().split("## Running", 1)[1]
    return section.split("| option | meaning |", 1)[1].split("\n\n", 1)[0]


def test_readme_options_table_names_every_option_of_every_command():
    """Every long option that `--help` shows is in the README's options table: the main
    command's in a row's first column, a subcommand's in that subcommand's row."""
    from bench.cli.main import command_parsers

    table = options_table()
    missing = []
    for command, parser in command_parsers().items():
        rows = [line for line in table.splitlines() if line.startswith(f"| `{command}")]
        where = "\n".join(row.split("|")[1] if not command else row for row in rows)
        assert where, f"no row for the {command} subcommand"
        for action in parser._actions:
            flags = [f for f in action.option_strings if f.startswith("--") and f != "--help"]
            if flags and not any(re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", where) for f in flags):
                missing.append(f"{command or 'run_bench.py'} {flags[0]}")
    assert not missing, f"options missing from the README's table: {missing}"


def test_readme_says_no_gpu_before_the_install_commands():
    text = README.read_text()
    assert text.index("**No GPU?**") < text.index("```bash")


def test_readme_and_list_datasets_give_kth_the_same_split():
    import datasets

    split = "persons 1-15 train, 16 validation, 17-25 test"
    assert split in " ".join(README.read_text().split())
    assert split in datasets.datasets_table()
