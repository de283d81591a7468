"""The error for a data file that cannot serve as a sequence dataset."""
from __future__ import annotations


class DatasetFileError(ValueError):
    """A data file that cannot serve as a sequence dataset (missing key, wrong rank, NaN...)."""
