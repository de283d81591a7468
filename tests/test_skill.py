"""Skill scores at thresholds (bench.evaluation.skill), checked against counts made by hand."""
import numpy as np
import pytest
import torch

from bench.evaluation.skill import ThresholdCounts, add_counts

# One 2x3 frame in VIL levels; thresholds 16, 74, 133 (three of SEVIR's). By hand, with >=:
#   16:  target reaches (0,1) (0,2) (1,0) (1,2); prediction (0,0) (0,2) (1,0) (1,2)
#        -> H 3, M 1, F 1, R 1
#   74:  both reach (0,2) (1,0) (1,2) -> H 3, M 0, F 0, R 3
#   133: target reaches (1,0) only, the prediction nowhere -> H 0, M 1, F 0, R 5
TARGET = [[10, 20, 80], [140, 0, 74]]
PRED = [[16, 15, 74], [130, 5, 80]]
THRESHOLDS = [16, 74, 133]
HAND = {"hits": [3, 3, 0], "misses": [1, 0, 1], "false_alarms": [1, 0, 0],
        "correct_negatives": [1, 3, 5]}


def frames(values, scale=256.0):
    """Values as the metrics receive them: float32 in [0, 1] (a scale of 256 keeps every level
    exact, so the hand counts test the rule at the thresholds themselves)."""
    return (torch.tensor(values, dtype=torch.float64) / scale).float().reshape(1, 1, 1, 2, 3)


def skill(pred, target, thresholds=THRESHOLDS, pools=(1,)):
    counts = ThresholdCounts(thresholds, [256.0], [0.0], "VIL level", "test", pools=pools)
    counts.update(pred, target)
    return counts.result()


def test_counts_and_scores_match_the_hand_counts():
    result = skill(frames(PRED), frames(TARGET))
    assert {k: v[0] for k, v in result["counts"]["1"].items()} == HAND  # lead time 0
    per = result["per_threshold"]
    assert per["csi"] == pytest.approx([3 / 5, 1.0, 0.0])
    assert per["pod"] == pytest.approx([3 / 4, 1.0, 0.0])
    assert per["sucr"][:2] == pytest.approx([3 / 4, 1.0]) and per["sucr"][2] is None  # H + F = 0
    assert per["bias"] == pytest.approx([1.0, 1.0, 0.0])
    # HSS = 2 (HR - MF) / ((H+M)(M+R) + (H+F)(F+R))
    assert per["hss"] == pytest.approx([2 * (3 - 1) / (4 * 2 + 4 * 2), 1.0, 0.0])
    assert result["headline"]["csi_m"] == pytest.approx((0.6 + 1.0 + 0.0) / 3)
    assert result["headline"]["sucr_m"] is None  # undefined at 133, which the target reaches
    assert result["thresholds_scored"] == THRESHOLDS


@pytest.mark.parametrize("scale", [255.0, 100.0, 1000.0])
def test_values_equal_to_a_threshold_count_as_reaching_it_after_float32_round_trip(scale):
    """Every whole level through float32 [0, 1] and back reaches itself, not the next level. At
    a scale of 100, 50 of the 101 levels come back a hair under themselves in float32."""
    n = int(scale) + 1
    levels = torch.arange(n, dtype=torch.float64)
    x01 = (levels / scale).float().reshape(1, 1, 1, 1, n)
    counts = ThresholdCounts(levels[1:].tolist(), [scale], [0.0], "level", "test", pools=(1,))
    counts.update(x01, x01)
    assert counts.result()["counts"]["1"]["hits"][0] == [n - k for k in range(1, n)]


def test_a_strict_rule_or_swapped_arguments_change_the_scores():
    """What OpenSTL issue #173's code did (prediction and target swapped) and pysteps' ``>``
    would give on the same frames: this case tells each apart from the definition."""
    right = skill(frames(PRED), frames(TARGET))["per_threshold"]
    swapped = skill(frames(TARGET), frames(PRED))["per_threshold"]
    assert swapped["pod"][2] is None and right["pod"][2] == 0.0  # POD and SUCR trade places
    assert swapped["bias"][2] is None and right["bias"][2] == 0.0
    below = skill(frames(PRED) - 1 / 1024, frames(TARGET))["counts"]["1"]  # 16 -> 15.75
    assert below["false_alarms"][0][0] == 0 and below["hits"][0][1] == 2


def test_each_threshold_is_scored_at_its_own_value():
    """OpenSTL issue #173 overwrote the threshold inside its loop, so every threshold was scored
    at one value; here three thresholds give three different count rows."""
    counts = skill(frames(PRED), frames(TARGET))["counts"]["1"]
    rows = {tuple(counts[name][0][k] for name in counts) for k in range(3)}
    assert len(rows) == 3


def test_pooling_takes_the_block_maximum_before_thresholding():
    target = torch.zeros(1, 1, 1, 5, 5)
    pred = torch.zeros(1, 1, 1, 5, 5)
    target[..., 0, 0] = pred[..., 3, 3] = 200 / 256  # the same 4x4 block, different pixels
    target[..., 4, 4] = pred[..., 4, 4] = 200 / 256  # the partial block at the corner
    result = skill(pred, target, [181], pools=(1, 4, 16))
    assert result["counts"]["1"]["hits"][0] == [1]  # only the corner pixel agrees
    assert result["counts"]["1"]["misses"][0] == [1] and result["counts"]["1"]["false_alarms"][0] == [1]
    pooled = {k: v[0][0] for k, v in result["counts"]["4"].items()}
    # 2x2 blocks (the edge rows and columns form partial blocks); two hold a 200 in both
    assert pooled == {"hits": 2, "misses": 0, "false_alarms": 0, "correct_negatives": 2}
    assert result["per_threshold"]["csi"] == [pytest.approx(1 / 3)]
    assert result["per_threshold"]["csi_pool4"] == [1.0]
    assert "16" not in result["counts"]  # a 16x16 pool does not fit a 5x5 frame


def test_per_lead_time_scores_and_the_mean_over_thresholds_per_lead():
    pred = torch.cat([frames(PRED), frames(TARGET)], dim=1)  # lead 2: a perfect forecast
    target = torch.cat([frames(TARGET), frames(TARGET)], dim=1)
    result = skill(pred, target)
    lead = result["per_lead"]
    assert lead["csi"][0] == pytest.approx([0.6, 1.0, 0.0]) and lead["csi"][1] == [1.0] * 3
    assert lead["csi_m"] == pytest.approx([1.6 / 3, 1.0])
    # overall: the counts summed over lead times, then divided
    assert result["per_threshold"]["csi"][0] == pytest.approx((3 + 4) / (5 + 4))


def test_counts_of_two_halves_add_up_to_the_whole():
    rng = np.random.default_rng(0)
    pred = torch.from_numpy(rng.random((6, 3, 1, 16, 16))).float()
    target = torch.from_numpy(rng.random((6, 3, 1, 16, 16))).float()
    whole = skill(pred, target, [30, 120, 200], pools=(1, 4))
    halves = add_counts(skill(pred[:4], target[:4], [30, 120, 200], pools=(1, 4)),
                        skill(pred[4:], target[4:], [30, 120, 200], pools=(1, 4)))
    assert halves["counts"] == whole["counts"]
    assert halves["headline"] == whole["headline"] and halves["per_lead"] == whole["per_lead"]
    other_unit = {**whole, "unit": "dBZ"}
    with pytest.raises(ValueError, match="differ in unit; they cannot be added"):
        add_counts(whole, other_unit)
    with pytest.raises(ValueError, match="differ in thresholds, pools"):
        add_counts(whole, skill(pred, target, [30, 120], pools=(1,)))


def test_thresholds_that_the_target_never_reaches_are_left_out_of_the_means():
    result = skill(frames(PRED), frames(TARGET), [16, 74, 250])
    assert result["thresholds_scored"] == [16, 74]
    assert result["per_threshold"]["csi"][2] is None  # no event in either: undefined
    assert result["headline"]["csi_m"] == pytest.approx(0.8)


@pytest.mark.parametrize("bad", [[], [74, 16], [16, 16]])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(ValueError, match="distinct and increasing"):
        ThresholdCounts(bad, [255.0], [0.0], "VIL level", "test")
