"""``run_bench.py evaluate``: a finished cell's best checkpoint tested on another dataset or preset."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import datasets
import models

from ..config import PRESETS
from ..grid.cross_eval import evaluate_cells, load_target
from ..grid.request import EvaluationRequest
from ..grid.trained import find_cells
from ..runtime.device import resolve_device
from ..store import ResultsStore
from .checks import check_available, check_dataset_config, check_writable, model_patterns
from .options import Parser, add_option


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="run_bench.py evaluate",
        description="Test the best checkpoint of finished training cells on another dataset or "
                    "preset; one record per (model, seed), mode 'evaluate', in the target's store.",
        epilog="example: trained on 2-digit Moving MNIST (run_bench.py --models convlstm), tested "
               "on 3 digits:\n  run_bench.py evaluate --models convlstm --from-dataset mmnist "
               "--dataset mmnist3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_option(parser, "models", help="trained models (space-separated, wildcards or 'all'; "
                                      "default: modernn convlstm predrnn persistence)")
    add_option(parser, "seeds", help="the training seeds to evaluate (default: 0)")
    parser.add_argument("--from-dataset", default="mmnist", metavar="NAME",
                        help="the data the cells were trained on: the --dataset of the training "
                             "run (mmnist) or its results folder (mmnist-embedded; default: "
                             "mmnist)")
    parser.add_argument("--from-preset", default="quick", choices=list(PRESETS),
                        help="the preset the cells were trained at (default: quick)")
    parser.add_argument("--from-hash", metavar="HASH",
                        help="the training configuration's hash (or its start), where cells of "
                             "several configurations are in the store")
    add_option(parser, "dataset", required=True, default=None,
               help="the dataset to test on, e.g. mmnist3 (see run_bench.py --list-datasets)")
    add_option(parser, "dataset-config",
               help="a TOML file describing the dataset to test on (README 'Your own data')")
    add_option(parser, "preset", default=None,
               help="the preset of the test data (frame size, test clips, frames; default: "
                    "--from-preset)")
    parser.add_argument("--in-len", type=int, metavar="N",
                        help="input frames of the test clips (default: the preset's); a model "
                             "built for its input length must keep it")
    parser.add_argument("--out-len", type=int, metavar="N",
                        help="frames to predict (default: the preset's), e.g. longer than trained")
    add_option(parser, "data-root", help="folder of the test data's files (as for training)")
    add_option(parser, "cache-dir")
    add_option(parser, "device")
    add_option(parser, "out", help="results root holding the training stores; the records go to "
                                   "OUT/<test data>/<preset> (default: results)")
    add_option(parser, "rerun", help="evaluate again even when the store has the evaluation done")
    add_option(parser, "no-progress",
               help="accepted as in the main command; evaluate draws no progress bars (one line "
                    "per cell)")
    return parser


def make_request(args: argparse.Namespace) -> EvaluationRequest:
    """The parsed options as a request (the device resolved, the model patterns expanded)."""
    device = resolve_device(args.device)
    names = models.list_models(model_patterns(args.models))
    check_available(names)
    return EvaluationRequest(
        models=names, seeds=args.seeds,
        dataset=args.dataset, device=device, out=args.out,
        from_dataset=args.from_dataset, from_preset=args.from_preset, from_hash=args.from_hash,
        preset=args.preset, in_len=args.in_len, out_len=args.out_len, data_root=args.data_root,
        cache_dir=args.cache_dir, rerun=args.rerun)


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # bad arguments (one line already printed) or --help
        return exit_.code
    try:
        request = make_request(args)
        cells = find_cells(request)
        if args.dataset_config:
            check_dataset_config(args.dataset_config)
            request.dataset = datasets.register_config(args.dataset_config)
        data_config, data = load_target(request, cells)
        check_writable(request.out_root)
    except (ValueError, KeyError, OSError) as error:
        print("\n".join(f"error: {line}" for line in str(error).splitlines()), file=sys.stderr)
        return 2
    folder, failed = evaluate_cells(cells, data, data_config, request)
    print_report(folder)
    return 1 if failed else 0


def print_report(folder: Path) -> None:
    """Writes the target store's report and prints its cross-dataset table and the folder."""
    from ..report import write_report  # pandas and seaborn take seconds to import
    from ..report.evaluation_table import cross_eval_markdown, latest_evaluations
    print(f"report: {write_report(folder)}")
    evaluations = latest_evaluations(ResultsStore(folder).records())
    if evaluations:
        print(cross_eval_markdown(evaluations))
    print(f"results: {folder}")
