"""What a run is asked to do: the data configuration for a dataset."""
from __future__ import annotations

import datasets

from ..config import DataConfig, apply_overrides


def preset_data(data: DataConfig, dataset: str) -> DataConfig:
    """A preset's data options for ``dataset``, with what the dataset fixes (its frame counts)."""
    fixed = datasets.get_dataset(dataset).fixed
    if dataset != data.dataset or fixed:
        return apply_overrides(data, {"dataset": dataset, **fixed})
    return data
