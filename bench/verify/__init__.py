"""``run_bench.py verify``: this machine's outputs against the reference implementations'.

golden.py: the golden comparison and its bound (also what the golden tests use); cases/: each
model's name mapping and golden case; train_step.py: the harness's training step against one
iteration of the MoDeRNN authors' trainer; paths.py: the fast paths each check is run with;
checks.py: the rows of the verification.
"""
