"""The field's scores end to end: declared by the datasets (SEVIR's VIL thresholds, WeatherBench's
latitudes and climatology, an own file's ``thresholds``), computed in the test evaluation,
kept in the records and shown in the report (columns, per-threshold table, plots)."""
import json

import numpy as np
import pytest

from bench.cli.main import main
from bench.evaluation.skill import add_counts
from datasets import load_sequence_dataset
from datasets.files.config import SequenceFileConfig
from tests.test_standard_datasets import root  # noqa: F401  (the real-layout files fixture)


def smoke(tmp_path, *args):
    out = tmp_path / "out"
    assert main([*args, "--preset", "smoke", "--models", "persistence", "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == 0
    folder = next(p.parent for p in out.rglob("records.jsonl"))
    return folder, [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


def test_sevir_records_hold_skill_counts_and_the_report_shows_them(root, tmp_path):  # noqa: F811
    folder, (record,) = smoke(tmp_path, "--dataset", "sevir-128", "--data-root", str(root))
    skill = record["metrics"]["skill"]
    assert skill["thresholds"] == [16, 74, 133, 160, 181, 219] and skill["unit"] == "VIL level"
    assert set(skill["counts"]) == {"1", "4", "16"}
    test_pixels = len(record["metrics"]["per_clip"]["mse"]) * 12 * 128 * 128
    for k in range(6):  # every test pixel of every lead time counted once per threshold
        assert sum(sum(skill["counts"]["1"][name][t][k] for t in range(12))
                   for name in skill["counts"]["1"]) == test_pixels
    assert record["dataset_info"]["scores"]["thresholds"]["values"] == skill["thresholds"]
    again = add_counts(skill, skill)  # two identical shards: the same scores
    assert again["headline"] == skill["headline"]
    summary = (folder / "summary.md").read_text()
    assert "CSI-M pool16" in summary and "CSI ≥219" in summary and "value >= threshold" in summary
    assert (folder / "skill.png").is_file() and (folder / "skill.csv").is_file()
    assert "csi_m" in (folder / "summary.csv").read_text().splitlines()[0]


def test_weatherbench_records_hold_latitude_weighted_scores_in_kelvin(root, tmp_path):  # noqa: F811
    folder, (record,) = smoke(tmp_path, "--dataset", "weatherbench", "--data-root", str(root))
    entry = record["metrics"]["latitude_weighted"]
    assert entry["unit"] == "K" and len(entry["per_lead"]["rmse"]) == 12
    assert entry["headline"]["rmse"] == pytest.approx(np.mean(entry["per_lead"]["rmse"]))
    # persistence over random hourly fields: an error of several K, not of a [0, 1] map
    assert 1 < entry["headline"]["rmse"] < 60
    lats = record["dataset_info"]["scores"]["latitude_weighting"]["latitudes"]
    assert len(lats) == 32 and lats[0] == -87
    summary = (folder / "summary.md").read_text()
    assert "wRMSE (K)" in summary and "ACC" in summary and "Rasp et al. 2020" in summary
    assert (folder / "weather.png").is_file() and (folder / "lead_scores.csv").is_file()


def test_datasets_that_declare_nothing_get_no_such_scores(tmp_path):
    folder, (record,) = smoke(tmp_path, "--dataset", "mmnist")
    assert "skill" not in record["metrics"] and "latitude_weighted" not in record["metrics"]
    assert "scores" not in record["dataset_info"]
    assert not (folder / "skill.png").exists() and "CSI" not in (folder / "summary.md").read_text()


def test_own_files_declare_thresholds_in_their_units(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "radar.npy", (rng.random((6, 20, 1, 16, 16)) * 60).astype(np.float32))
    config = SequenceFileConfig(name="radar", path="radar.npy", in_len=4, out_len=2,
                                thresholds=[20, 35], base_dir=str(tmp_path),
                                normalize={"mode": "range", "range": [0, 60]})
    data = load_sequence_dataset(config)
    assert data.scoring["thresholds"]["values"] == [20, 35]
    toml = tmp_path / "radar.toml"
    toml.write_text('name = "radar"\npath = "radar.npy"\nin_len = 4\nout_len = 2\n'
                    'thresholds = [20, 35]\n[normalize]\nmode = "range"\nrange = [0, 60]\n')
    _, (record,) = smoke(tmp_path, "--dataset-config", str(toml))
    assert record["metrics"]["skill"]["thresholds"] == [20.0, 35.0]
    assert record["metrics"]["skill"]["unit"] == "file units"


@pytest.mark.parametrize("bad", [[], [35, 20], ["20"], [True], [20, 20]])
def test_bad_thresholds_in_a_dataset_file_are_one_clear_error(tmp_path, bad):
    with pytest.raises(ValueError, match="thresholds must be a non-empty list"):
        SequenceFileConfig(name="radar", path="radar.npy", thresholds=bad)


def test_the_threshold_tables_means_are_the_records_over_reached_thresholds(tmp_path):
    """POD-M, SUCR-M and BIAS-M in the report are the records' (thresholds the target reaches),
    not means over every threshold: false alarms at thresholds no target reaches stay out."""
    import torch

    from bench.evaluation.skill import ThresholdCounts
    from bench.report.domain import write_domain_scores

    target = torch.tensor([20.0, 80.0, 0.0, 0.0]).reshape(1, 1, 1, 2, 2) / 255
    pred = torch.tensor([230.0, 230.0, 0.0, 0.0]).reshape(1, 1, 1, 2, 2) / 255
    counts = ThresholdCounts([16, 74, 133, 219], [255.0], [0.0], "level", "test", pools=(1,))
    counts.update(pred, target)
    skill = counts.result()
    assert skill["headline"]["sucr_m"] == pytest.approx(0.75)  # (1 + 0.5) / 2: 16 and 74 only
    record = {"model": "m", "seed": 0, "status": "ok", "metrics": {"skill": skill}}
    lines, _ = write_domain_scores(tmp_path, [record], {}, "", {})
    row = next(line for line in lines[0].splitlines() if line.startswith("| m "))
    assert row.split("|")[-3].strip() == "0.750", lines[0]  # SUCR-M; over all four: 0.375


def test_scores_declared_without_a_normalization_record_are_refused():
    from types import SimpleNamespace

    from bench.evaluation.domain import dataset_scorers

    data = SimpleNamespace(name="radar", details={}, scoring={"thresholds": {
        "values": [16], "unit": "level", "source": "test"}})
    with pytest.raises(ValueError, match="'radar' declares scores in its units \\(thresholds\\)"):
        dataset_scorers(data)
