"""The command line (``run_bench.py``): one module per command; they parse, call and print."""
