"""Command-line options that several commands share (the main command, ``evaluate``, ``report``,
``download``), each defined once here so that the same option means and parses the same in
every command that has it. A command may change an option's help or default to say what it
does there (``evaluate --dataset`` is the data to test on), never its type or form."""
from __future__ import annotations

import argparse

from ..config import PRESETS

DEFAULT_MODELS = ["modernn", "convlstm", "predrnn", "persistence"]

OPTIONS: dict[str, tuple[tuple[str, ...], dict]] = {
    "models": (("--models",), dict(
        nargs="+", default=DEFAULT_MODELS, metavar="NAME",
        help="model names (space-separated), shell wildcards ('predrnn*') or 'all' "
             f"(default: {' '.join(DEFAULT_MODELS)})")),
    "seeds": (("--seeds", "--seed"), dict(
        nargs="+", type=int, default=[0], metavar="N",
        help="random seeds, space-separated; one run per (model, seed) (default: 0)")),
    "dataset": (("--dataset",), dict(
        default="mmnist", help="dataset name (default: mmnist; see --list-datasets)")),
    "dataset-config": (("--dataset-config",), dict(
        metavar="PATH", help="a TOML file describing your own dataset (its name names the "
                             "results folder); see README 'Your own data'")),
    "preset": (("--preset",), dict(
        default="quick", choices=list(PRESETS),
        help="smoke: seconds; quick (default): minutes on a CPU; paper: the authors' protocol; "
             "openstl: OpenSTL's Moving MNIST recipe per model (--list-models --preset openstl "
             "shows them)")),
    "data-root": (("--data-root",), dict(
        metavar="DIR",
        help="mmnist: folder with train-images-idx3-ubyte.gz and/or mnist_test_seq.npy "
             "(default: embedded digits); the standard datasets (mfmnist, taxibj, kth, "
             "weatherbench, sevir): the folder holding their published files (see 'download "
             "--help')")),
    "cache-dir": (("--cache-dir",), dict(
        default=".cache/datasets", metavar="DIR",
        help="where generated evaluation sets are kept (default: .cache/datasets)")),
    "device": (("--device",), dict(default="auto", help="auto (default), cpu, cuda, cuda:N")),
    "out": (("--out",), dict(default="results", metavar="FOLDER",
                             help="results root (default: results)")),
    "reference": (("--reference",), dict(
        metavar="NAME",
        help="the model every other is compared with (it must be in --models; default: modernn "
             "when it is in the grid, else no comparison)")),
    "rerun": (("--rerun",), dict(
        action="store_true",
        help="train cells again even when the store has them done on this kind of device (a new "
             "record is appended; reports use the newest); implies --remeasure")),
    "no-progress": (("--no-progress",), dict(
        action="store_true",
        help="no progress bars: training prints a line per validation and per tenth of the run "
             "(loss, iterations/s, ETA) instead")),
}


class Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr, 'error: ...', exit code 2 (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_option(parser: argparse.ArgumentParser, name: str, **changes) -> None:
    """Adds the shared option ``name`` (a key of OPTIONS) to ``parser``; ``changes``: its help or
    default in this command, or ``nargs`` (``report --out`` takes several folders); its type,
    action and choices stay the shared definition's."""
    flags, definition = OPTIONS[name]
    kept = {"type", "action", "choices"} & changes.keys()
    if kept:
        raise ValueError(f"option {flags[0]}: {', '.join(sorted(kept))} are fixed by its shared "
                         "definition; only help, default, metavar, nargs and required may change")
    parser.add_argument(*flags, **{**definition, **changes})
