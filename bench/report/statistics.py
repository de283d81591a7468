"""Uncertainty of a comparison with the reference model: a paired bootstrap over the test clips,
and a paired t-test over seeds where there are enough seeds to test.

Every model of a results folder is evaluated on the same test clips, so two models' errors on a
clip are paired: a clip that is hard for one is hard for the other. The bootstrap resamples
clips, never models' values independently, which removes the clip-to-clip spread that an
unpaired interval would carry. With several seeds, each clip's difference is taken within a seed
(the model's seed-s run minus the reference's seed-s run) and then averaged over the seeds both
ran; the clips of that average are resampled. That interval covers the test-set sampling of the
seed-averaged difference, not the spread of training runs: with 3 or more seeds a t-test over
seeds says whether the difference holds beyond the seeds run. A model without trainable
parameters (persistence, blank, mean, optical_flow) gives the same predictions whatever the seed:
it is paired with every seed of the other model, and never tested over seeds.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0  # the bootstrap's own seed: a report rebuilt from the same store has the same intervals
MIN_SEEDS_FOR_TEST = 3
_CHUNK = 200  # resamples drawn at once: 200 x 10,000 clips of int64 indices is 16 MB


def paired_bootstrap(differences, resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                     seed: int = SEED) -> tuple[float, float, float]:
    """Mean of the per-clip ``differences`` and its percentile bootstrap interval: ``resamples``
    draws of as many clips with replacement, seeded. Returns (mean, low, high)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError(f"differences must be a non-empty 1-D array; got shape {d.shape}")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, _CHUNK):
        count = min(_CHUNK, resamples - start)
        means[start : start + count] = d[rng.integers(0, len(d), size=(count, len(d)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(d.mean()), float(low), float(high)


def paired_clip_differences(runs: dict[int, np.ndarray], reference: dict[int, np.ndarray],
                            fixed: bool = False, reference_fixed: bool = False):
    """Per clip: the model's value minus the reference's, paired within each seed and averaged
    over seeds. ``runs``/``reference``: {seed: per-clip values}. A ``fixed`` (deterministic)
    side is paired with every seed of the other. Returns (differences, seeds paired), or
    (None, 0) when no seed pairs or the clip counts differ (not the same test set)."""
    if fixed and not reference_fixed:
        seeds = sorted(reference)
    elif reference_fixed and not fixed:
        seeds = sorted(runs)
    else:
        seeds = sorted(set(runs) & set(reference))
        if not seeds and fixed and reference_fixed:
            seeds = [None]
    if not seeds or not runs or not reference:
        return None, 0

    def pick(table, is_fixed, seed):
        return table[seed] if seed in table else table[min(table)] if is_fixed else None

    pairs = [(pick(runs, fixed, s), pick(reference, reference_fixed, s)) for s in seeds]
    if any(a is None or b is None or len(a) != len(b) for a, b in pairs):
        return None, 0
    return np.mean([np.asarray(a) - np.asarray(b) for a, b in pairs], axis=0), len(seeds)


def seeds_test(per_seed: dict[int, float], reference: dict[int, float]) -> float:
    """Two-sided paired t-test over the seeds both ran; NaN below ``MIN_SEEDS_FOR_TEST``."""
    seeds = sorted(set(per_seed) & set(reference))
    if len(seeds) < MIN_SEEDS_FOR_TEST:
        return np.nan
    diff = np.array([per_seed[s] - reference[s] for s in seeds])
    if np.allclose(diff, diff[0]):  # a constant difference: t is undefined
        return 0.0 if diff[0] != 0 else 1.0
    return float(stats.ttest_rel([per_seed[s] for s in seeds], [reference[s] for s in seeds]).pvalue)
