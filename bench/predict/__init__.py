"""Trained models you can use: a finished cell's best checkpoint as a predictor.

    import bench
    trained = bench.load_trained("results", "convlstm", seed=0, dataset="mmnist", preset="smoke")
    future = trained.predict(frames, n_future=10)    # numpy in, numpy out, in the data's units
    trained.provenance                                 # commit, config hash, checkpoint, metrics

:mod:`.trained` finds and loads the cell (the lookup ``run_bench.py evaluate`` uses) and
predicts; :mod:`.inputs` reads frames from files, image folders and videos; :mod:`.outputs`
writes predictions (``.npy``) and a GIF strip. ``run_bench.py predict`` is the command.
"""
from .trained import TrainedModel, load_trained

__all__ = ["TrainedModel", "load_trained"]
