"""Benchmarks and maintenance commands run with ``python -m``."""
