"""``run_bench.py verify``: this machine's outputs against the reference implementations', for
every fast path; one row per (check, fast paths), exit code 1 if any row fails."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..runtime.device import resolve_device
from ..verify.checks import Row, default_files, select, verify
from ..verify.golden import FIXTURES
from .options import Parser, add_option

COLUMNS = ("check", "fast paths", "measured", "bound", "worst ratio", "result")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="run_bench.py verify",
        description="Check on this machine and device that every model reproduces its reference "
                    "implementation's outputs (the golden fixtures) and that the training step "
                    "reproduces the MoDeRNN authors' iteration, eager and with each fast path.",
        epilog="example: run_bench.py verify --device cuda --models modernn convlstm",
    )
    add_option(parser, "device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument("--fixture", nargs="+", metavar="FILE",
                        help="check these files instead (golden layout <model>_golden.npz, or "
                             "one stating its kind and config, or the training-step layout; "
                             "tests/fixtures/README.md); default: every fixture in "
                             f"{FIXTURES.relative_to(FIXTURES.parents[1])}, and the training step "
                             "(float64 on the CPU, float32 on CUDA)")
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="only the checks of these models (default: all)")
    parser.add_argument("--compile", action="store_true",
                        help="also with torch.compile (minutes per model)")
    return parser


def files(args: argparse.Namespace, device) -> list[Path]:
    if not args.fixture:
        return default_files(device)
    paths = [Path(f).resolve() for f in args.fixture]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"no such fixture file: {', '.join(missing)}")
    return paths


def cells(row: Row) -> list[str]:
    result = "pass" if row.passed else "FAIL"
    ratio = f"{row.ratio:.3g}" if not row.error else "-"
    return [row.check, row.paths, row.diff or row.error, row.bound or "-", ratio, result]


def print_row(row: Row) -> None:
    print("| " + " | ".join(cell.replace("|", "\\|") for cell in cells(row)) + " |", flush=True)


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code
    try:
        device = resolve_device(args.device)
        chosen = select(files(args, device), args.models)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(f"verifying on {device}: {len(chosen)} check(s)")
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    rows = verify(chosen, device, args.compile, on_row=print_row)
    failed = [row for row in rows if not row.passed]
    print(f"{len(rows) - len(failed)} of {len(rows)} rows passed in "
          f"{time.perf_counter() - started:.0f}s" + (f"; {len(failed)} FAILED" if failed else ""))
    return 1 if failed else 0
