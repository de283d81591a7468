"""What every part of a run stands on: devices, precision, compilation, processes of a
distributed run, memory, time, provenance and atomic files. Imports nothing else of ``bench``."""
