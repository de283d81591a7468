"""``python run_bench.py download mnist|mfmnist [--data-root DIR]``: fetch and verify source files.

Only the command lives here (its options, then parse, call, print); what can be downloaded and
the fetching itself are :mod:`datasets.standard.remote_files` and :mod:`datasets.standard.download`.
"""
from __future__ import annotations

import argparse
import sys

from datasets.standard.download import BASE_URL_ENV, DownloadError, download
from datasets.standard.remote_files import DATASETS, help_epilog, manual_datasets

from .options import Parser, add_option


def build_parser(manual: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """The subcommand's options; ``manual``: the datasets it names a page for (default:
    manual_datasets())."""
    manual = manual_datasets() if manual is None else manual
    parser = Parser(prog="run_bench.py download",
                    description="Download and verify a dataset's files.",
                    epilog=help_epilog(manual), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=[*DATASETS, *manual])
    add_option(parser, "data-root",
               help="where the files go (default: data/mnist for mnist, data for the others, "
                    "which go into their publisher's subfolder: mfmnist into DIR/moving_fmnist); "
                    "then pass the same folder to run_bench.py --data-root")
    parser.add_argument("--base-url", help=f"fetch every file from this base URL instead "
                                           f"(also: environment variable {BASE_URL_ENV})")
    return parser


def main(argv: list[str]) -> int:
    manual = manual_datasets()
    args = build_parser(manual).parse_args(argv)
    if args.dataset in manual:
        print(f"error: {args.dataset} cannot be downloaded automatically: {manual[args.dataset]} "
              "(DIR is what you pass as --data-root)", file=sys.stderr)
        return 1
    folder = args.data_root or ("data/mnist" if args.dataset == "mnist" else "data")
    try:
        download(args.dataset, folder, args.base_url)
    except (DownloadError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
