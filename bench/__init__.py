"""The benchmark harness. ``bench.load_trained`` (bench.predict): a trained cell as a predictor,
imported on first use (it brings torch and the models)."""


def __getattr__(name: str):
    if name in ("load_trained", "TrainedModel"):
        from . import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
