"""Experiment trackers (``--log tensorboard wandb mlflow``): each grid cell is one tracker run.

- ``registry``: the trackers by name, and the check that the asked-for ones are installed;
- ``base``: what a backend does (:class:`base.Backend`) and the run it logs (:class:`base.RunInfo`);
- ``tensorboard_log``, ``wandb_log``, ``mlflow_log``: one backend each;
- ``fanout``: every backend at once; one that fails gives one warning and is left out;
- ``strips``: example clips as images (input | target, then the prediction);
- ``cell``: a cell's tracking: the training loop's hook, the test's metrics, its identity kept
  beside the cell's checkpoints so that a resumed cell continues its run.
"""
