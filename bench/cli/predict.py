"""``run_bench.py predict``: a finished cell's best checkpoint predicting the frames after yours.

    run_bench.py predict --models convlstm --from-dataset mmnist --preset smoke \\
        --input clips.npy --output future.npy --gif

The cell is looked up in the results root as ``evaluate`` looks it up; the input frames are
read (bench.predict.inputs), mapped to [0, 1] with the training data's normalisation, the model
predicts ``--n-future`` frames after the last ``in_len`` of each sequence, and the predictions
are mapped back to the data's units and written (bench.predict.outputs).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import models

from ..predict import load_trained
from ..predict.inputs import read_frames
from ..predict.outputs import write_gif, write_npy
from .checks import model_patterns
from .options import Parser, add_option


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="run_bench.py predict",
                    description="Predict the frames after your own with a trained cell's best "
                                "checkpoint; writes them as .npy (in your data's units) and, "
                                "with --gif, an animated strip.")
    add_option(parser, "models", default=None, required=True, metavar="NAME",
               help="the trained model (one name)")
    add_option(parser, "seeds", help="the training seed (one; default: 0)")
    parser.add_argument("--from-dataset", default="mmnist", metavar="NAME",
                        help="the data the cell was trained on: the training run's --dataset "
                             "(mmnist) or its results folder (default: mmnist)")
    add_option(parser, "preset", help="the preset the cell was trained at (default: quick)")
    parser.add_argument("--from-hash", metavar="HASH",
                        help="the training configuration's hash (or its start), where several "
                             "were trained")
    add_option(parser, "out", help="results root holding the training store (default: results)")
    parser.add_argument("--input", required=True, metavar="FILE",
                        help=".npy, .npz or .h5 frames ([N,] T, C, H, W; --layout for others), "
                             "a folder of images (one frame each, in name order) or a video")
    parser.add_argument("--key", metavar="NAME", help="the array (.npz) or dataset (.h5) holding "
                                                      "the frames, when the file holds several")
    parser.add_argument("--layout", metavar="AXES",
                        help="the input array's axes: NTCHW, TCHW, NTHWC, THWC, NTHW or THW "
                             "(default: NTCHW, TCHW, THW by rank)")
    parser.add_argument("--output", required=True, metavar="FILE",
                        help="where the predicted frames go (.npy, float32, the input's units: "
                             "[N, n_future, C, H, W], or [n_future, C, H, W] for one sequence)")
    parser.add_argument("--n-future", type=int, metavar="N",
                        help="frames to predict (default: as many as the cell was trained to)")
    parser.add_argument("--gif", nargs="?", const="", metavar="FILE",
                        help="also write an animated GIF of the input and predicted frames "
                             "(default file: OUTPUT with .gif)")
    parser.add_argument("--clip", action="store_true",
                        help="clip input values outside the training data's range (as the "
                             "datasets do) instead of stopping with an error")
    add_option(parser, "device")
    return parser


def main(argv: list[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # bad arguments (one line already printed) or --help
        return exit_.code
    try:
        names = models.list_models(model_patterns(args.models))
        if len(names) != 1 or len(args.seeds) != 1:
            raise ValueError(f"predict takes one model and one seed; got --models "
                             f"{' '.join(names)} --seeds {' '.join(map(str, args.seeds))}")
        if Path(args.output).suffix.lower() != ".npy":
            raise ValueError(f"--output {args.output!r}: predictions are written as .npy; name "
                             "a file ending in .npy")
        trained = load_trained(args.out, names[0], seed=args.seeds[0], dataset=args.from_dataset,
                               preset=args.preset, config_hash=args.from_hash, device=args.device)
        frames, single = read_frames(args.input, args.key, args.layout, trained.channels)
        predicted = trained.predict(frames, args.n_future, clip=args.clip)
    except (ValueError, KeyError, OSError) as error:
        print("\n".join(f"error: {line}" for line in str(error).splitlines()), file=sys.stderr)
        return 2
    written = write_npy(args.output, predicted[0] if single else predicted)
    where = {k: trained.provenance[k] for k in ("dataset", "preset", "config_hash", "epoch",
                                                 "checkpoint", "git_commit")}
    print(f"{names[0]} seed {args.seeds[0]} ({json.dumps(where)}): {len(frames)} sequence(s) of "
          f"{frames.shape[1]} frames in, {predicted.shape[1]} predicted each")
    print(f"predictions: {written} (shape {tuple(np.load(written, mmap_mode='r').shape)})")
    if args.gif is not None:
        gif = Path(args.gif) if args.gif else Path(args.output).with_suffix(".gif")
        offset, scale = trained.value_range()
        print(f"gif: {write_gif(gif, trained.check_frames(frames), predicted, offset, scale)}")
    return 0
