"""Latitude-weighted RMSE and ACC (bench.evaluation.gridded) against WeatherBench's formulas,
written again here in NumPy (Rasp et al. 2020, eqs. 1-3)."""
import numpy as np
import pytest
import torch

from bench.evaluation.gridded import LatitudeWeighted, latitude_weights

LATS = np.linspace(-87.1875, 87.1875, 8)  # WeatherBench's 5.625-degree rows, fewer of them
LOW, SCALE = 220.0, 100.0  # x = x01 * 100 + 220 (Kelvin)


def scorer(clim):
    return LatitudeWeighted(LATS, clim, [SCALE], [LOW], "K", "test climatology", "test")


def sample(rng, b=5, t=3):
    kelvin = 260 + 20 * rng.random((b, t, 1, 8, 16))
    return kelvin, torch.from_numpy((kelvin - LOW) / SCALE)


def test_weights_are_cosines_with_mean_one():
    w = latitude_weights(LATS).numpy()
    assert w.mean() == pytest.approx(1.0)
    assert w == pytest.approx(np.cos(np.deg2rad(LATS)) / np.cos(np.deg2rad(LATS)).mean())


def test_rmse_and_acc_match_weatherbench_formulas_per_lead_time():
    rng = np.random.default_rng(1)
    (fk, f), (tk, t) = sample(rng), sample(rng)
    clim = 265 + 5 * rng.random((1, 8, 16))
    s = scorer(clim)
    s.update(f[:2], t[:2])
    s.update(f[2:], t[2:])
    result = s.result()
    w = np.cos(np.deg2rad(LATS))
    w = (w / w.mean())[:, None]
    for lead in range(3):
        err = fk[:, lead, 0] - tk[:, lead, 0]
        rmse = np.mean([np.sqrt(np.mean(w * e**2)) for e in err])  # eq. 1: per forecast, then mean
        fa, ta = fk[:, lead, 0] - clim[0], tk[:, lead, 0] - clim[0]
        acc = np.sum(w * fa * ta) / np.sqrt(np.sum(w * fa**2) * np.sum(w * ta**2))  # eq. 3
        assert result["per_lead"]["rmse"][lead] == pytest.approx(rmse, rel=1e-9)
        assert result["per_lead"]["acc"][lead] == pytest.approx(acc, rel=1e-9)
    assert result["headline"]["rmse"] == pytest.approx(np.mean(result["per_lead"]["rmse"]))
    assert result["headline"]["acc"] == pytest.approx(np.mean(result["per_lead"]["acc"]))


def test_unweighted_or_pooled_rmse_differ_from_the_definition():
    """Guards: equal weights, or the root taken once over all forecasts, give other numbers."""
    rng = np.random.default_rng(2)
    (fk, f), (tk, t) = sample(rng, b=4, t=1), sample(rng, b=4, t=1)
    s = scorer(np.full((1, 8, 16), 270.0))
    s.update(f, t)
    rmse = s.result()["headline"]["rmse"]
    err = fk[:, 0, 0] - tk[:, 0, 0]
    assert abs(rmse - np.mean([np.sqrt(np.mean(e**2)) for e in err])) > 1e-6
    w = (np.cos(np.deg2rad(LATS)) / np.cos(np.deg2rad(LATS)).mean())[:, None]
    assert abs(rmse - np.sqrt(np.mean(w * err**2))) > 1e-6


def test_acc_of_a_perfect_forecast_is_one_and_of_climatology_undefined():
    rng = np.random.default_rng(3)
    clim = 265 + 5 * rng.random((1, 8, 16))
    _, t = sample(rng)
    perfect = scorer(clim)
    perfect.update(t, t)
    assert perfect.result()["headline"] == {"rmse": pytest.approx(0.0, abs=1e-9), "acc": 1.0}
    flat = scorer(clim)
    flat.update(torch.from_numpy((clim - LOW) / SCALE).expand(5, 3, 1, 8, 16), t)
    assert flat.result()["per_lead"]["acc"] == [None] * 3 and flat.result()["headline"]["acc"] is None


def test_sums_of_shards_add_up():
    rng = np.random.default_rng(4)
    (_, f), (_, t) = sample(rng, b=6), sample(rng, b=6)
    clim = np.full((1, 8, 16), 268.0)
    whole, a, b = scorer(clim), scorer(clim), scorer(clim)
    whole.update(f, t)
    a.update(f[:3], t[:3])
    b.update(f[3:], t[3:])
    added = {k: np.add(a.result()["sums"][k], b.result()["sums"][k]) for k in whole.result()["sums"]}
    for k, v in whole.result()["sums"].items():
        assert added[k] == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize("lats, message", [([], "degrees"), ([95.0], "degrees"),
                                            ([90.0, -90.0], "no weight")])
def test_bad_latitudes_are_refused(lats, message):
    with pytest.raises(ValueError, match=message):
        latitude_weights(lats)


def test_a_climatology_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"\[C, H, W\] with H = 8"):
        scorer(np.zeros((1, 4, 16)))
    with pytest.raises(ValueError, match="take one variable \\(C = 1\\); got C = 2"):
        scorer(np.zeros((2, 8, 16)))  # two variables would be pooled into one RMSE


def test_scores_without_forecasts_are_null_not_nan():
    from bench.evaluation.gridded import weighted_scores

    empty = weighted_scores({name: [0.0, 0.0] for name in ("rmse_sum", "forecasts",
                                                           "anomaly_product",
                                                           "forecast_anomaly_sq",
                                                           "target_anomaly_sq")})
    assert empty["per_lead"] == {"rmse": [None, None], "acc": [None, None]}
    assert empty["headline"] == {"rmse": None, "acc": None}
