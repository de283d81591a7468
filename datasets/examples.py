"""Write an example dataset: ``python -m datasets.examples blobs --out F.h5``.

The generators live in their own modules (:mod:`datasets.synthetic.blobs`); this module is only the command,
so that the ``datasets`` package never imports it before ``-m`` runs it.
"""
from __future__ import annotations

import argparse
import sys

from .synthetic.blobs import BLOBS, write_blobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.examples",
                                     description="Write an example sequence dataset.")
    parser.add_argument("kind", choices=["blobs"])
    parser.add_argument("--out", required=True, help="HDF5 file to write")
    parser.add_argument("--sequences", type=int, default=BLOBS["n_sequences"])
    parser.add_argument("--frames", type=int, default=BLOBS["n_frames"])
    parser.add_argument("--size", type=int, default=BLOBS["size"])
    parser.add_argument("--seed", type=int, default=BLOBS["seed"])
    args = parser.parse_args(argv)
    path = write_blobs(args.out, args.sequences, args.frames, args.size, args.seed)
    print(f"wrote {path} ({args.sequences} sequences x {args.frames} frames x 1 x {args.size} "
          f"x {args.size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
