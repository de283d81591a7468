"""``python -m bench.loop_bench``: the training-loop benchmark, kept under its documented name
(the code is :mod:`bench.tools.loop_bench`)."""
import sys

from bench.tools.loop_bench import main

if __name__ == "__main__":
    sys.exit(main())
