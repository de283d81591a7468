#!/usr/bin/env python
"""Benchmark spatiotemporal predictors: ``python run_bench.py --models modernn convlstm ...``."""
import sys

from bench.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
