"""``run_bench.py`` with cost profiling stubbed out (it takes most of a smoke run's time).

The resume test runs this as a subprocess and kills it; everything else is the real CLI.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.runner  # noqa: E402

bench.runner.profile_model = lambda model, *args, **kwargs: {
    "params": sum(p.numel() for p in model.parameters())}

from bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
