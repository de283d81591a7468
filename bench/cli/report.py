"""``run_bench.py report [--out FOLDER ...]``: every table and plot rebuilt from the stores."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..store import RECORDS_FILE
from .options import Parser, add_option


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="run_bench.py report",
                    description="Rebuild every table and plot from the store.")
    add_option(parser, "out", nargs="+", default=["results"],
               help="results folders; each store found below them is reported (default: results)")
    add_option(parser, "reference",
               help="the model every other is compared with (default: the one the newest run "
                    "named, else modernn when present, else none)")
    return parser


def main(argv: list[str]) -> int:
    """``run_bench.py report [--out FOLDER ...]``: rebuild tables and plots from stores alone."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # bad arguments (one line already printed) or --help
        return exit_.code
    from ..report import write_report  # here: pandas, scipy and seaborn take seconds to import
    stores = sorted({p.parent for root in args.out for p in Path(root).rglob(RECORDS_FILE)})
    if not stores:
        print(f"error: no {RECORDS_FILE} under {', '.join(args.out)}", file=sys.stderr)
        return 2
    failed = 0
    for folder in stores:
        try:
            print(f"report: {write_report(folder, reference=args.reference)}")
        except (ValueError, KeyError, OSError) as error:  # one bad store does not stop the others
            print(f"error: cannot report {folder}: {type(error).__name__}: {error}",
                  file=sys.stderr)
            failed += 1
    return 1 if failed else 0
