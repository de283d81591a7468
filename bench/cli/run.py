"""The main command: ``python run_bench.py --models modernn convlstm ...`` trains, tests and
profiles every cell of the grid, then writes the report."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import datasets
import models
from datasets import safe_component

from ..config import Preset, TrainConfig, apply_overrides, get_preset, parse_override
from ..cost.match import parse_match
from ..grid.checks import check_model_args, check_seeds, check_train_overrides
from ..grid.request import (
    RUN_FOLDERS,
    RunRequest,
    load_data_or_explain,
    model_config,
    out_folder,
    preset_data,
)
from ..grid.runner import GridInterrupted, run_grid
from ..grid.shards import parse_shard
from ..grid.sizes import match_target
from ..runtime import distributed
from ..runtime.device import resolve_device
from ..runtime.files import DiskFullError, disk_full, no_space
from ..store import ResultsStore
from ..track.registry import TRACKERS, check_installed
from ..train.budget import parse_budget
from ..train.signals import exit_code, sigterm_as_ctrl_c, stopped_by
from .checks import check_available, check_dataset_config, check_writable, model_patterns
from .launch_options import add_launch_options
from .options import Parser, add_option
from .recipes import recipes_listing


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="run_bench.py",
        description="Train and evaluate spatiotemporal predictors under one protocol.",
        epilog="subcommands:\n"
               "  run_bench.py report [--out FOLDER ...]     rebuild every table and plot from "
               "the stores below FOLDER (default: results)\n"
               "  run_bench.py download mnist|mfmnist [--data-root DIR]   fetch and verify the "
               "MNIST (mnist) or\n"
               "      Fashion-MNIST (mfmnist) files; 'download --help' names the page and the "
               "layout of the others\n"
               "  run_bench.py evaluate --models convlstm --from-dataset mmnist --dataset mmnist3\n"
               "      test finished cells' best checkpoints on another dataset or preset (here "
               "trained on 2 digits,\n      tested on 3); records of mode 'evaluate' in the test "
               "data's store\n"
               "  run_bench.py predict --models convlstm --from-dataset mmnist --input FILE "
               "--output FILE.npy [--gif]\n"
               "      a finished cell's best checkpoint predicts the frames after yours\n"
               "run 'run_bench.py SUBCOMMAND --help' (report, download, evaluate, predict) for "
               "their options; --launcher slurm|local runs the grid as submitit jobs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name in ("models", "dataset", "dataset-config", "preset", "seeds"):
        add_option(parser, name)
    parser.add_argument("--shard", metavar="I/N",
                        help="run only the I-th of N disjoint parts of the (model, seed) grid "
                             "(1 <= I <= N; round-robin over the sorted cells), e.g. for a "
                             "SLURM job array writing to one store")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--steps", type=int, help="override the preset's steps per epoch")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--budget", metavar="KIND=N",
                        help="train every model until the same budget is spent: flops=N "
                             "(training FLOPs), time=SECONDS (training time on this device) or "
                             "steps=N (iterations); the schedule is laid out over the budget")
    parser.add_argument("--match", metavar="KIND=N|MODEL",
                        help="scale every model's width to the same size: params=N|MODEL or "
                             "flops=N|MODEL (FLOPs of one test rollout at batch 1), e.g. "
                             "params=modernn")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any training option, e.g. --set amp=bf16 --set lr=5e-4")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model constructor argument, e.g. --model-arg hidden=64")
    add_option(parser, "reference")
    parser.add_argument("--lpips", action="store_true",
                        help="also report LPIPS (AlexNet, as OpenSTL) on the test set: needs "
                             "the lpips package's weight file ('pip install --no-deps lpips': "
                             "without --no-deps pip also installs torchvision and a CUDA build "
                             "of torch) and AlexNet's weights in the torch hub cache "
                             "(downloaded once if missing); when it cannot be computed the "
                             "record says why and the run goes on. A cell tested with LPIPS is "
                             "another cell (its own config hash)")
    parser.add_argument("--log", nargs="+", default=[], choices=list(TRACKERS), metavar="TRACKER",
                        help="log each cell to experiment trackers, one or several of: "
                             f"{', '.join(TRACKERS)} (a run per cell: losses, learning rate, "
                             "validation, test metrics, cost, config, example strips; a resumed "
                             "cell continues its run); install them with pip install '.[track]'")
    for name in ("device", "out", "data-root", "cache-dir"):
        add_option(parser, name)
    parser.add_argument("--profile-only", action="store_true",
                        help="measure parameters, FLOPs, throughput and memory without training")
    parser.add_argument("--list-models", action="store_true", help="list registered models")
    parser.add_argument("--list-datasets", action="store_true",
                        help="list registered datasets (with --dataset-config: and that one)")
    parser.add_argument("--format", choices=["table", "json"], default="table",
                        help="output format of --list-models")
    add_option(parser, "no-progress")
    add_option(parser, "rerun")
    parser.add_argument("--remeasure", action="store_true",
                        help="measure every model's cost again (parameters, FLOPs, throughput, "
                             "memory) even when RESULTS/cost_cache/ holds it from an earlier run")
    add_launch_options(parser)
    return parser


def list_models_table(fmt: str, preset: Preset | None = None) -> str:
    """The registered models; with a preset that holds recipes (``--preset openstl``), each
    model's recipe and its source too (bench.cli.recipes)."""
    rows = []
    for name in models.list_models():
        spec = models.get_spec(name)
        params = models.parameter_count(name)  # on the meta device: nothing is allocated
        missing = models.unavailable(name)
        rows.append({"name": name, "family": spec.family, "params": params,
                     "paper": spec.paper + (f" [unavailable: {missing}]" if missing else ""),
                     "available": missing is None})
    if preset is not None and preset.recipes is not None:
        return recipes_listing(rows, preset, fmt)
    if fmt == "json":
        return json.dumps(rows, indent=2)
    width = max(len(r["name"]) for r in rows)
    family = max(len(r["family"]) for r in rows)
    lines = [f"{'name':<{width}}  {'family':<{family}}  {'params':>11}  paper"]
    lines += [f"{r['name']:<{width}}  {r['family']:<{family}}  {r['params']:>11,}  {r['paper']}"
              for r in rows]
    return "\n".join(lines)


def check_models_fit(request: RunRequest) -> None:
    """Build each model once for the data's frame shape, so a configuration that cannot work
    (e.g. a patch size that does not divide the frame size) is a clear error before training."""
    data = load_data_or_explain(request.preset.data, request.data_root, request.cache_dir)
    for name in request.models:
        safe_component(name, "model name")
        check_model_args(name, models.get_spec(name).build, request.model_args)
        config = model_config(name, request.preset.for_model(name), data, request.model_args)
        try:
            models.create_model(name, **config)
        except ValueError as error:
            raise ValueError(f"model {name!r} cannot take {data.name}'s "
                             f"{data.channels}x{data.height}x{data.width} frames: {error}") from None
        except Exception:  # anything else is recorded as that model's failure by the grid
            pass
    if request.match is not None:
        match_target(request, data)  # a reference that cannot be matched: an error before training
    check_run_folders(request, data)
    return data


def make_request(args: argparse.Namespace) -> RunRequest:
    preset = get_preset(args.preset)
    overrides = dict(parse_override(text) for text in args.set)
    for key, value in (("epochs", args.epochs), ("steps_per_epoch", args.steps),
                       ("batch_size", args.batch_size)):
        if value is not None:
            if value < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be >= 1; got {value}")
            overrides[key] = value
    preset.train_overrides = check_train_overrides(_coerce(overrides))  # they win over recipes
    preset.train = apply_overrides(preset.train, preset.train_overrides)
    check_seeds(args.seeds)
    preset.data = preset_data(preset.data, args.dataset)
    check_installed(args.log)  # before any training
    out_root = Path(args.out)
    check_writable(out_root)
    if args.data_root is not None and not Path(args.data_root).is_dir():
        raise ValueError(f"--data-root {args.data_root!r} is not a folder")
    names = models.list_models(model_patterns(args.models))
    check_available(names)  # before any training, like a tracker that is not installed
    if args.budget is not None:
        check_budget_schedule(preset, names)
    return RunRequest(
        models=names, preset=preset, seeds=args.seeds, reference=_reference(args.reference, names),
        device=resolve_device(args.device), out_root=out_root, data_root=args.data_root,
        cache_dir=args.cache_dir, model_args=dict(parse_override(t) for t in args.model_arg),
        profile_only=args.profile_only, progress=not args.no_progress, rerun=args.rerun,
        remeasure=args.remeasure,
        shard=parse_shard(args.shard) if args.shard is not None else None,
        budget=parse_budget(args.budget) if args.budget is not None else None,
        match=parse_match(args.match) if args.match is not None else None,
        lpips=args.lpips, log_to=list(dict.fromkeys(args.log)),
    )


def check_budget_schedule(preset, names: list[str]) -> None:
    """A budget lays out its own cosine schedule over the budget (bench.train.budget): a model
    whose recipe asks for another per-iteration schedule is an error before anything runs."""
    bad = [name for name in names if preset.for_model(name).train.lr_schedule == "onecycle"]
    if bad:
        raise ValueError(f"--budget lays out a cosine learning-rate schedule over the budget; "
                         f"lr_schedule=onecycle (preset {preset.name}: {', '.join(bad)}) is not "
                         "accepted with it; accepted: --set lr_schedule=cosine or constant, or "
                         "no --budget")


def _reference(requested: str | None, names: list[str]) -> str | None:
    """``--reference``, which must be in the grid; by default modernn when it is, else none."""
    if requested is None:
        return "modernn" if "modernn" in names else None
    if requested not in names:
        raise ValueError(f"--reference {requested!r} is not in the grid; add it to --models or "
                         f"pick one of: {', '.join(names)}")
    return requested


def _coerce(overrides: dict) -> dict:
    """JSON lists become tuples where the config field is a tuple (betas)."""
    defaults = TrainConfig()
    return {k: tuple(v) if isinstance(getattr(defaults, k, None), tuple) and isinstance(v, list)
            else v for k, v in overrides.items()}


def check_run_folders(request: RunRequest, data) -> None:
    """Every folder the run will write (its store folder, the cost cache; for training also
    examples/ and checkpoints/) takes a file, checked before any cost is measured."""
    folder = out_folder(request.out_root, data, request.preset)
    parts = RUN_FOLDERS[:2] if request.profile_only else RUN_FOLDERS
    for part in parts:
        check_writable(folder / part)


def main(argv: list[str] | None = None, launch=None) -> int:
    """The main command; ``launch(argv)``: what runs it with ``--launcher`` (bench.cli.launch)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # bad arguments (one line already printed) or --help
        return exit_.code
    if args.launcher is not None:
        if launch is None:
            print("error: --launcher is run by run_bench.py (bench.cli.main), not here",
                  file=sys.stderr)
            return 2
        return launch(argv)
    try:
        if args.list_models:
            print(list_models_table(args.format, get_preset(args.preset)))
            return 0
        if args.dataset_config:
            check_dataset_config(args.dataset_config)
            args.dataset = datasets.register_config(args.dataset_config)
        if args.list_datasets:
            print(datasets.datasets_table())
            return 0
        request = make_request(args)
        request.device = distributed.rank_device(request.device)  # cuda:LOCAL_RANK under torchrun
    except (ValueError, KeyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with distributed.process_group(request.device), sigterm_as_ctrl_c():  # group: torchrun only
        try:
            return _run(request)
        except OSError as error:  # a full disk: one line, the file and the space left
            if not no_space(error):
                raise
            full = error if isinstance(error, DiskFullError) else disk_full(error.filename, error)
            print(f"error: {full}", file=sys.stderr)
            return 1


def _run(request: RunRequest) -> int:
    try:
        # Rank 0 first: it alone writes the cached evaluation clips the others then read.
        data = distributed.main_first(lambda: check_models_fit(request))
    except (ValueError, KeyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        folder, new_records = run_grid(request, data=data)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: one line, no traceback
        where = stop if isinstance(stop, GridInterrupted) else (
            f"interrupted{stopped_by(stop)} before training began; nothing was recorded. Run the "
            "same command to start again (measured costs are kept)")
        print(f"\n{where}", file=sys.stderr)
        return exit_code(stop)  # 130 Ctrl-C, 143 SIGTERM
    except distributed.RankLost as lost:  # a stalled or dead rank: one line, no traceback
        print(f"\nerror: {lost}", file=sys.stderr)
        return lost.exit_code
    if not distributed.is_main():  # rank 0 reports; every rank exits with the same status
        return 1 if any(r["status"] != "ok" for r in new_records) else 0
    from ..report import cost_frame, cost_table, write_report  # slow imports, only when needed
    records = [r for r in ResultsStore(folder).latest()
               if r["mode"] == ("profile" if request.profile_only else "train")
               and r["model"] in request.models]
    # profile-only records get the cost tables and plots
    write_report(folder, reference=request.reference)
    if request.profile_only:
        print(cost_table(cost_frame(records)).to_markdown(index=False))
    else:
        print((folder / "summary.md").read_text())
    print(f"results: {folder}")
    return 1 if any(r["status"] != "ok" for r in new_records) else 0
