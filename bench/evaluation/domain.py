"""The scores a dataset's own community reads, built from what the dataset declares.

A dataset declares them in ``SequenceData.scoring`` (datasets/core/sequence_data.py):
``thresholds`` -> skill scores at those thresholds (bench.evaluation.skill, record key
``skill``); ``latitude_weighting`` -> latitude-weighted RMSE and ACC (bench.evaluation.gridded,
record key ``latitude_weighted``). Values are in the data's units, reached from [0, 1] through the
dataset's normalisation record (``x = x01 * scale + offset``). Datasets that declare nothing
(Moving MNIST, KTH) get none.
"""
from __future__ import annotations

from .gridded import LatitudeWeighted
from .skill import ThresholdCounts

SKILL, GRIDDED = "skill", "latitude_weighted"


def dataset_scorers(data) -> dict:
    """``{record key: accumulator}`` (each with ``update(pred, target)`` on [0, 1] frames and
    ``result() -> dict``) for what ``data.scoring`` declares."""
    scoring = getattr(data, "scoring", None) or {}
    if not scoring:
        return {}
    normalization = (data.details or {}).get("normalization") or {}
    if "scale" not in normalization or "offset" not in normalization:
        raise ValueError(f"dataset {getattr(data, 'name', '?')!r} declares scores in its units "
                         f"({', '.join(scoring)}) but its details hold no normalization with "
                         "scale and offset: thresholds and errors could not be put in units")
    scale, offset = normalization["scale"], normalization["offset"]
    scorers = {}
    if "thresholds" in scoring:
        spec = scoring["thresholds"]
        scorers[SKILL] = ThresholdCounts(spec["values"], scale, offset, spec["unit"],
                                         spec["source"])
    if "latitude_weighting" in scoring:
        spec = scoring["latitude_weighting"]
        scorers[GRIDDED] = LatitudeWeighted(spec["latitudes"], spec["climatology"], scale, offset,
                                            spec["unit"], spec["climatology_rule"], spec["source"])
    return scorers
