"""Running the grid as cluster jobs through submitit (``run_bench.py --launcher slurm|local``).

:mod:`.jobs` is one job (a picklable, requeueable callable running the main command on one
shard of the grid); :mod:`.executors` builds submitit's SLURM or local executor from the
launcher's options and writes the sbatch script a SLURM submission would use. This module
itself imports nothing, so the command line parses without submitit installed (the
``cluster`` extra).
"""

LAUNCHERS = ("local", "slurm")
