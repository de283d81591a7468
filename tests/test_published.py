"""Published Moving MNIST results as data (bench/report/published/mmnist.csv) against the source
lines they were copied from (OpenSTL's table, vendored in tests/fixtures/published/), and the
report's "Published results" block on a store tested on real-layout Moving MNIST files."""
import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.config import PRESETS, DataConfig
from bench.report.published import COLUMNS, on_standard_test_set, published_table

TABLE = Path(__file__).parent / "fixtures" / "published" / "openstl_video_benchmarks_mmnist.md"
FIRST_ROW_LINE = 77  # the vendored table's first row is line 77 of video_benchmarks.md


def openstl_rows() -> dict[int, list[str]]:
    """Line number in video_benchmarks.md -> the row's cells."""
    rows = [line for line in TABLE.read_text().splitlines() if line.startswith("| ")][1:]
    return {FIRST_ROW_LINE + i: [c.strip() for c in line.strip("|").split("|")]
            for i, line in enumerate(rows)}


def test_the_table_has_its_columns_and_a_source_for_every_row():
    table = published_table()
    assert tuple(table.columns) == COLUMNS
    assert table["source"].str.len().min() > 20 and set(table["convention"]) <= {"openstl", "unstated"}
    assert not table.duplicated(["method", "source", "protocol"]).any()
    import models
    assert set(table["model"]) - {""} <= set(models.list_models())


def test_every_openstl_row_is_its_source_line():
    table, source = published_table(), openstl_rows()
    ours = table[table["source"].str.startswith("chengtan9907/OpenSTL")]
    assert len(ours) == len(source) == 27  # the 200- and 2,000-epoch tables, every row
    for _, row in ours.iterrows():
        line = int(row["source"].rsplit("line ", 1)[1])
        method, setting, params, flops, _, mse, mae, ssim, psnr = source[line][:9]
        assert row["method"] == method and row["epochs"] == float(setting.split()[0])
        assert (row["params_m"], row["flops_g"]) == (float(params[:-1]), float(flops[:-1]))
        for name, text in (("mse", mse), ("mae", mae), ("ssim", ssim), ("psnr", psnr)):
            assert row[name] == float(text) if text else np.isnan(row[name]), (line, name)
    convlstm = ours[(ours["model"] == "convlstm")].set_index("epochs")["mse"]
    assert convlstm.to_dict() == {200.0: 29.80, 2000.0: 22.41}


def test_the_papers_rows_are_as_their_tables_state_them():
    table = published_table().set_index("method")
    assert table.loc["PredFormer Quadruplet-TSST (6 layers)", ["mse", "mae", "ssim"]].tolist() == [
        12.4, 44.6, 0.973]
    swin = table.loc["SwinLSTM"]
    assert (swin["model"], swin["mse"], swin["ssim"]) == ("swinlstm", 17.7, 0.962)
    assert np.isnan(swin["mae"]) and "Table 2" in swin["source"]


def test_only_the_standard_test_set_counts():
    info = {"test_set": "mnist_test_seq.npy", "in_len": 10, "out_len": 10, "height": 64,
            "width": 64, "channels": 1}
    assert on_standard_test_set([{"dataset_info": info}])
    assert not on_standard_test_set([{"dataset_info": {**info, "test_set": "generated"}}])
    assert not on_standard_test_set([{"dataset_info": {**info, "out_len": 20}}])
    assert not on_standard_test_set([])


def write_real_layout_files(folder: Path) -> None:
    """Tiny files in the published layouts: 60 MNIST-like digits, 4 test clips of 20 frames."""
    rng = np.random.default_rng(0)
    digits = (rng.random((60, 28, 28)) > 0.8).astype(np.uint8) * 255
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(np.array([2051, 60, 28, 28], dtype=">u4").tobytes() + digits.tobytes())
    np.save(folder / "mnist_test_seq.npy", rng.integers(0, 256, (20, 4, 64, 64), dtype=np.uint8))


@pytest.fixture
def standard_store(tmp_path, monkeypatch, no_profile):
    """A store trained (tiny, 2 iterations) and tested on real-layout Moving MNIST files."""
    from bench.cli.run import main
    smoke = PRESETS["smoke"]
    monkeypatch.setitem(PRESETS, "smoke", dataclasses.replace(
        smoke, data=DataConfig(n_val=2, n_test=4), train=dataclasses.replace(
            smoke.train, epochs=1, steps_per_epoch=2, eval_batch_size=4),
        model_overrides={"hidden": 4, "layers": 1}))
    write_real_layout_files(tmp_path)
    assert main(["--preset", "smoke", "--models", "convlstm", "persistence", "--data-root",
                 str(tmp_path), "--out", str(tmp_path / "results"), "--cache-dir",
                 str(tmp_path / "cache"), "--no-progress", "--device", "cpu"]) == 0
    return tmp_path / "results" / "mmnist" / "smoke"


def test_a_report_on_the_standard_test_set_shows_the_published_block(standard_store):
    summary = (standard_store / "summary.md").read_text()
    accuracy, published = summary.split("# Published results")
    assert "ConvLSTM-S" not in accuracy  # never mixed into the measured table
    assert "ConvLSTM-S" in published and "29.8" in published and "22.41" in published
    assert "preset smoke, 1 epoch " in published and "persistence" not in published
    assert "OpenSTL selects on the test set" in published
    frame = pd.read_csv(standard_store / "published.csv")
    record = json.loads((standard_store / "records.jsonl").read_text().splitlines()[0])
    assert frame["ours: mse"].iloc[0] == pytest.approx(record["metrics"]["openstl"]["headline"]["mse"])
    assert set(frame["published"]) == {"ConvLSTM-S"} and len(frame) == 2  # 200 and 2,000 epochs
    readme = (standard_store / "README.md").read_text()
    assert "## Published results" in readme and "(published.png)" in readme
    assert (standard_store / "published.png").stat().st_size > 0
