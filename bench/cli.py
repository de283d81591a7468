"""The command line: ``python run_bench.py --models modernn convlstm ...``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import models

from .config import PRESETS, TrainConfig, apply_overrides, get_preset, parse_override
from .precision import resolve_device
from .report import summary_frame, write_report
from .runner import RunRequest, run_grid
from .store import ResultsStore

DEFAULT_MODELS = ["modernn", "convlstm", "predrnn", "persistence"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_bench.py",
        description="Train and evaluate spatiotemporal predictors under one protocol.",
    )
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="NAME",
                        help="model names, shell wildcards ('predrnn*') or 'all' "
                             f"(default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--dataset", default="mmnist", help="dataset (default: mmnist)")
    parser.add_argument("--preset", default="quick", choices=list(PRESETS),
                        help="smoke: seconds; quick (default): minutes on a CPU; paper: the "
                             "authors' protocol")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="N")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--steps", type=int, help="override the preset's steps per epoch")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any training option, e.g. --set amp=bf16 --set lr=5e-4")
    parser.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model constructor argument, e.g. --model-arg hidden=64")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--out", default="results", help="results root (default: results)")
    parser.add_argument("--data-root", help="folder with train-images-idx3-ubyte.gz and/or "
                                            "mnist_test_seq.npy (default: embedded digits)")
    parser.add_argument("--cache-dir", default=".cache/datasets",
                        help="where generated evaluation sets are kept")
    parser.add_argument("--profile-only", action="store_true",
                        help="measure parameters, FLOPs, throughput and memory without training")
    parser.add_argument("--list-models", action="store_true", help="list registered models")
    parser.add_argument("--format", choices=["table", "json"], default="table",
                        help="output format of --list-models")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def list_models_table(fmt: str) -> str:
    rows = []
    for name in models.list_models():
        spec = models.get_spec(name)
        params = sum(p.numel() for p in models.create_model(name).parameters())
        rows.append({"name": name, "family": spec.family, "params": params, "paper": spec.paper})
    if fmt == "json":
        return json.dumps(rows, indent=2)
    width = max(len(r["name"]) for r in rows)
    family = max(len(r["family"]) for r in rows)
    lines = [f"{'name':<{width}}  {'family':<{family}}  {'params':>11}  paper"]
    lines += [f"{r['name']:<{width}}  {r['family']:<{family}}  {r['params']:>11,}  {r['paper']}"
              for r in rows]
    return "\n".join(lines)


def make_request(args: argparse.Namespace) -> RunRequest:
    preset = get_preset(args.preset)
    overrides = dict(parse_override(text) for text in args.set)
    for key, value in (("epochs", args.epochs), ("steps_per_epoch", args.steps),
                       ("batch_size", args.batch_size)):
        if value is not None:
            if value < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be >= 1; got {value}")
            overrides[key] = value
    preset.train = apply_overrides(preset.train, _coerce(overrides))
    if args.dataset != preset.data.dataset:
        preset.data = apply_overrides(preset.data, {"dataset": args.dataset})
    out_root = Path(args.out)
    _check_writable(out_root)
    if args.data_root is not None and not Path(args.data_root).is_dir():
        raise ValueError(f"--data-root {args.data_root!r} is not a folder")
    return RunRequest(
        models=models.list_models(args.models), preset=preset, seeds=args.seeds,
        device=resolve_device(args.device), out_root=out_root, data_root=args.data_root,
        cache_dir=args.cache_dir, model_args=dict(parse_override(t) for t in args.model_arg),
        profile_only=args.profile_only, progress=not args.no_progress,
    )


def _coerce(overrides: dict) -> dict:
    """JSON lists become tuples where the config field is a tuple (betas)."""
    defaults = TrainConfig()
    return {k: tuple(v) if isinstance(getattr(defaults, k, None), tuple) and isinstance(v, list)
            else v for k, v in overrides.items()}


def _check_writable(folder: Path) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise ValueError(f"output folder {str(folder)!r} cannot be written ({probe} is not a "
                         "writable folder)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list_models:
            print(list_models_table(args.format))
            return 0
        request = make_request(args)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    folder, new_records = run_grid(request)
    records = [r for r in ResultsStore(folder).latest()
               if r["mode"] == ("profile" if request.profile_only else "train")
               and r["model"] in request.models]
    if request.profile_only:
        print(summary_frame(records).to_markdown(index=False, floatfmt=".4g"))
    else:
        write_report(folder)
        print((folder / "summary.md").read_text())
    print(f"results: {folder}")
    return 1 if any(r["status"] != "ok" for r in new_records) else 0
