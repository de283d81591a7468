"""``run_bench.py``: the main command, or a subcommand (``report``, ``download``, ``evaluate``,
``predict``, ``verify``) when the first argument names one. Each command lives in its own
module of this package; ``--launcher`` runs the main command's grid as jobs (bench.cli.launch)."""
from __future__ import annotations

import argparse
import importlib
import sys

from . import run

# subcommand -> its module (imported when used: the report's pandas and seaborn take seconds)
SUBCOMMANDS = {"report": "report", "download": "download", "evaluate": "evaluate",
               "predict": "predict", "verify": "verify"}


def subcommand(name: str):
    """The module of subcommand ``name``: it has ``build_parser`` and ``main(argv)``."""
    return importlib.import_module(f"{__package__}.{SUBCOMMANDS[name]}")


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, by name ('' for the main command): for --help checks and tests."""
    return {"": run.build_parser(), **{name: subcommand(name).build_parser() for name in SUBCOMMANDS}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return subcommand(argv[0]).main(argv[1:])
    return run.main(argv, launch=launch)


def launch(argv: list[str]) -> int:
    """``--launcher``: bench.cli.launch, which needs submitit (imported only here)."""
    try:
        from . import launch as launcher
    except ModuleNotFoundError as error:
        if error.name != "submitit":
            raise
        print("error: --launcher needs submitit: pip install submitit (or the project's "
              "'cluster' extra)", file=sys.stderr)
        return 2
    return launcher.main(argv)
