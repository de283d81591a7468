"""The standard datasets (mfmnist, taxibj, kth, weatherbench, sevir) read tiny files written in
each publisher's layout: shapes, splits, normalisation from training data only, lazy reading,
one clear error for a missing file, and one smoke run each through the CLI."""
from __future__ import annotations

import gzip
import json

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import datasets.standard.kth as kth_module
from bench.cli.main import main
from datasets import build_dataset
from datasets.standard.common import MissingDataError


def write_idx(path, images):
    header = np.array([2051, len(images), 28, 28], ">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    # Fashion-MNIST: training items bright, test items dark, so test clips show their source.
    (root / "moving_fmnist").mkdir()
    write_idx(root / "moving_fmnist/train-images-idx3-ubyte.gz", np.full((12, 28, 28), 200))
    write_idx(root / "moving_fmnist/t10k-images-idx3-ubyte.gz", np.full((6, 28, 28), 50))
    # TaxiBJ: OpenSTL's npz, uncompressed (np.savez), whole flows 0-1292 scaled to [-1, 1] as
    # ST-ResNet does
    (root / "taxibj").mkdir()
    part = {k: (rng.integers(0, 1293, (n, 4, 2, 32, 32)) / 1292 * 2 - 1).astype(np.float32)
            for k, n in (("X_train", 40), ("Y_train", 40), ("X_test", 6), ("Y_test", 6))}
    np.savez(root / "taxibj/dataset.npz", **part)
    # KTH: extracted frame folders, and one video
    for person, action in ((1, "boxing"), (2, "running"), (16, "walking"), (17, "handclapping"),
                           (25, "boxing")):
        folder = root / f"kth/{action}/person{person:02d}_{action}_d1_uncomp"
        folder.mkdir(parents=True)
        for t in range(34):
            Image.fromarray(np.full((12, 16), (person * 10 + t) % 256, np.uint8)).save(
                folder / f"image_{t + 1:04d}.png")
    import imageio_ffmpeg
    video = root / "kth/handwaving/person03_handwaving_d2_uncomp.avi"
    video.parent.mkdir(parents=True)
    writer = imageio_ffmpeg.write_frames(str(video), (32, 32), pix_fmt_in="gray", codec="ffv1",
                                         pix_fmt_out="gray", macro_block_size=1)
    writer.send(None)
    for t in range(32):
        writer.send(np.full((32, 32), 4 * t, np.uint8).tobytes())
    writer.close()
    # WeatherBench: one NetCDF per year, 30 hours each; a far colder validation year, a test
    # year a little warmer than any training hour (inside the 5% margin), one far warmer
    import xarray as xr
    folder = root / "weatherbench/2m_temperature"
    folder.mkdir(parents=True)
    for year in range(2010, 2019):
        times = pd.date_range(f"{year}-01-01", periods=30, freq="h")
        values = 250 + 40 * rng.random((30, 32, 64))
        values += {2016: -100, 2017: 1.5, 2018: 200}.get(year, 0)
        ds = xr.Dataset({"t2m": (("time", "lat", "lon"), values.astype(np.float32),
                                 {"units": "K"})},
                        coords={"time": times, "lat": np.linspace(-87, 87, 32),
                                "lon": np.arange(64) * 5.625})
        ds.to_netcdf(folder / f"2m_temperature_{year}_5.625deg.nc", engine="h5netcdf")
    # SEVIR: catalog + VIL HDF5 files, events in 2018 (train), 2019-02 (val), 2019-07 (test);
    # Earthformer's bounds put 2019-01-01 00:00 in train and 2019-06-01 00:00 in validation; an
    # event with missing data and an event id listed twice are dropped as Earthformer drops them
    rows = []
    for year, events in ((2018, ["2018-05-01 12:00", "2018-07-01 12:00"]),
                         (2019, ["2019-02-01 12:00", "2019-07-01 12:00", "2019-01-01 00:00",
                                 "2019-06-01 00:00", "2019-08-01 12:00", "2019-09-01 12:00",
                                 "2019-10-01 12:00"])):
        name = f"vil/{year}/SEVIR_VIL_STORMEVENTS_{year}_0101_1231.h5"
        (root / "sevir/data" / name).parent.mkdir(parents=True)
        vil = np.empty((len(events), 384, 384, 49), np.uint8)  # [N, H, W, T] as SEVIR stores
        for i, day in enumerate(events):
            vil[i] = np.arange(49, dtype=np.uint8) + 10 * int(day[6:7])
            rows.append({"id": f"S{year}{i}", "file_name": name, "file_index": i,
                         "img_type": "vil", "time_utc": f"{day}:00",
                         "pct_missing": 3.5 if day.startswith("2019-08") else 0.0})
        with h5py.File(root / "sevir/data" / name, "w") as f:
            f["vil"] = vil
    rows[-1]["id"] = rows[-2]["id"]  # 2019-10 repeats 2019-09's id: both dropped
    rows.append({"id": "S0", "file_name": "ir069/x.h5", "file_index": 0, "img_type": "ir069",
                 "time_utc": "2018-05-01 12:00:00", "pct_missing": 0.0})
    pd.DataFrame(rows).to_csv(root / "sevir/CATALOG.csv", index=False)
    return root


def build(name, root, tmp_path, **kw):
    return build_dataset(name, data_root=str(root), cache_dir=str(tmp_path / "cache"), **kw)


def first_batch(data):
    return next(data.train_batches(batch_size=2, seed=0))


# ------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("name, shape, seq", [
    ("mfmnist", (1, 64, 64), 20), ("taxibj", (2, 32, 32), 8), ("kth", (1, 128, 128), 30),
    ("weatherbench", (1, 32, 64), 24), ("sevir", (1, 384, 384), 25),
    ("sevir-128", (1, 128, 128), 25)])
def test_shapes_frames_and_unit_range(root, tmp_path, name, shape, seq):
    data = build(name, root, tmp_path, n_val=3, n_test=3)
    assert (data.channels, data.height, data.width) == shape and data.seq_len == seq
    for clip in (data.val[0], data.test[len(data.test) - 1], first_batch(data)[0]):
        assert tuple(clip.shape) == (seq, *shape)
        assert 0 <= float(clip.min()) and float(clip.max()) <= 1
    info = json.loads(json.dumps(data.describe()))  # JSON-able, as records store it
    norm = info["normalization"]
    assert norm["units"] and len(norm["scale"]) == len(norm["offset"]) == 1
    assert "split_rule" in info


# ------------------------------------------------------------------------------ splits
def test_taxibj_validation_comes_from_training_with_a_gap_and_maps_minus_one_to_one(root, tmp_path):
    data = build("taxibj", root, tmp_path)
    windows = data.val.windows
    train_ids = set(range(40 - 4 - 8))
    assert set(windows[:, 0].tolist()) == {36, 37, 38, 39} and not train_ids & {36, 37, 38, 39}
    assert set(data.test.windows[:, 0].tolist()) == set(range(40, 46))
    x = np.load(root / "taxibj/dataset.npz")
    np.testing.assert_allclose(data.test[0].numpy(),
                               (np.concatenate([x["X_test"][0], x["Y_test"][0]]) + 1) / 2,
                               atol=1e-6)
    norm = data.describe()["normalization"]
    assert (norm["offset"], norm["scale"]) == ([-1.0], [2.0])
    assert data.describe()["storage"] == ["memory-mapped"]  # lazy: a memmap, not a read
    # every training clip is one of samples 0-27: never a validation sample (36-39) nor one of
    # the 8 before them, whose frames overlap the validation samples' in time
    samples = (np.concatenate([x["X_train"], x["Y_train"]], axis=1) + 1) / 2
    drawn = next(data.train_batches(batch_size=128, seed=0)).numpy()
    ids = {int(np.flatnonzero(np.abs(samples - clip).max(axis=(1, 2, 3, 4)) < 1e-6)[0])
           for clip in drawn}
    assert ids == set(range(28))
    # whole flows once unscaled: ST-ResNet's units are declared, flow = x01 * 1292
    assert norm["data_units"]["unit"] == "taxis/30 min"
    assert (norm["data_units"]["scale"], norm["data_units"]["offset"]) == ([1292.0], [0.0])


def test_taxibj_declares_no_flow_units_when_the_values_are_not_whole_flows(tmp_path):
    (tmp_path / "taxibj").mkdir()
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "taxibj/dataset.npz",
             **{k: rng.uniform(-1, 1, (n, 4, 2, 32, 32)).astype(np.float32)
                for k, n in (("X_train", 20), ("Y_train", 20), ("X_test", 2), ("Y_test", 2))})
    info = build("taxibj", tmp_path, tmp_path).describe()
    assert "data_units" not in info["normalization"]
    assert info["flow_units"].startswith("not declared") and "whole number" in info["flow_units"]


def test_kth_splits_by_person_and_reads_videos_and_frame_folders(root, tmp_path):
    data = build("kth", root, tmp_path)
    assert data.describe()["videos"] == {"train": 3, "val": 1, "test": 2}
    val_src = data.val.store.index[int(data.val.windows[0, 0])][0]
    test_src = data.test.store.index[int(data.test.windows[0, 0])][0]
    assert [p.name[:8] for p in val_src.items] == ["person16"]
    # the test set is exactly OpenSTL's test persons 17-25; validation is taken from its
    # training persons 1-16, never from the test persons
    assert tuple(kth_module.TEST_PERSONS) == tuple(range(17, 26))
    assert set(kth_module.TRAIN_PERSONS) | set(kth_module.VAL_PERSONS) == set(range(1, 17))
    assert {p.name[:8] for p in test_src.items} == {"person17", "person25"}
    assert {int(s) for s, _ in data.test.windows} == set(range(4, 6))  # both test videos used
    train_items = data.val.store.sources[0].items
    assert {p.name[:8] for p in train_items} == {"person01", "person02", "person03"}
    # windows: 34 frames, boxing non-overlapping from the end (start 4), running every 3
    train = data.val.store.sources[0]
    rows = {p.name.split("_")[1]: i for i, p in enumerate(train.items)}
    starts = lambda i: [int(a) for s, a in build_windows(data) if s == i]  # noqa: E731
    assert starts(rows["boxing"]) == [4] and starts(rows["running"]) == [0, 1, 4][:0] + [1, 4]
    video = train.read(rows["handwaving"], 5, 7)  # decoded from the AVI on demand
    np.testing.assert_allclose(video[:, 0, 64, 64], [20, 24], atol=1)
    folder = train.read(rows["boxing"], 3, 4)  # image_0004.png of person 1: 10 + 3
    np.testing.assert_allclose(folder[0, 0, 64, 64], 13, atol=1e-4)
    # windows are the resized 8-bit frames / 255 (OpenSTL's map)
    _, start = (int(v) for v in data.val.windows[0])
    np.testing.assert_allclose(data.val[0].numpy() * 255, val_src.read(0, start, start + 30),
                               atol=1e-3)
    assert "data_units" not in data.describe()["normalization"]  # 8-bit pixels: [0, 1] only


def counting_reads(monkeypatch, source_class):
    """Counts the frames each ``source_class.read`` call returns (building should read none)."""
    calls = []
    original = source_class.read

    def read(self, seq, start, stop):
        calls.append(stop - start)
        return original(self, seq, start, stop)

    monkeypatch.setattr(source_class, "read", read)
    return calls


def test_kth_and_sevir_read_no_frame_until_a_window_is_asked_for(root, tmp_path, monkeypatch):
    import datasets.standard.sevir as sevir
    kth_reads = counting_reads(monkeypatch, kth_module.KTHVideos)
    sevir_reads = counting_reads(monkeypatch, sevir.SevirEvents)
    kth, storms = build("kth", root, tmp_path), build("sevir", root, tmp_path)
    assert kth_reads == [] and sevir_reads == []
    assert not any(source._files for source in storms.test.store.sources)  # no file opened
    kth.test[0], storms.test[0]
    assert kth_reads == [30] and sevir_reads == [25]  # one window each, nothing more


def build_windows(data):
    import datasets.standard.kth as kth
    train = data.val.store.sources[0]
    actions = [p.name.split("_")[1] for p in train.items]
    return kth._windows(train.lengths, actions, data.seq_len, 0).tolist()


def test_weatherbench_splits_by_year_and_normalises_from_training_years_only(root, tmp_path):
    data = build("weatherbench", root, tmp_path)
    info = data.describe()
    assert info["hours"] == {"train": 180, "val": 30, "test": 60}
    # OpenSTL's windows: a split's last hour dropped, H - 25 windows of 24 hours
    assert {k: v["available"] for k, v in info["windows"].items()} == {
        "train": 180 - 25, "val": 30 - 25, "test": 60 - 25}
    assert int(data.test.windows[:, 1].max()) == 60 - 26
    norm = info["normalization"]
    # the far colder 2016 and far warmer 2018 leave the training statistics alone
    low, high = norm["train_min"], norm["train_max"]
    assert 250 <= low < 251 and 289 < high <= 290
    assert norm["offset"][0] == pytest.approx(low - 0.05 * (high - low))
    assert norm["scale"][0] == pytest.approx(1.1 * (high - low))
    assert norm["units"] == "K" and 265 < norm["train_mean"] < 275
    assert norm["data_units"] == {**norm["data_units"], "unit": "K", "scale": norm["scale"],
                                  "offset": norm["offset"]}
    # 2017 is up to 1.5 K warmer than any training hour: inside the margin, not clipped
    first_2017 = data.test[0].numpy()
    assert first_2017.max() < 1 and first_2017.max() > (high - norm["offset"][0]) / norm["scale"][0]
    assert float(data.test[len(data.test) - 1].max()) == 1.0  # 2018: far above, clipped
    assert float(data.val[0].max()) == 0.0  # 2016: far below the training min, clipped
    series = data.val.store.sources[0]
    assert not any(a.variable._in_memory for a in series.arrays)  # lazily opened, not loaded


def test_sevir_splits_by_event_date_and_pools_for_the_small_variant(root, tmp_path):
    full = build("sevir", root, tmp_path)
    info = full.describe()
    splits = info["splits"]
    # Earthformer's bounds: 2019-01-01 00:00 is training, 2019-06-01 00:00 validation; the event
    # with missing data (2019-08) and the id listed twice (2019-09, 2019-10) are dropped
    assert [splits[k]["events"] for k in ("train", "val", "test")] == [3, 2, 1]
    assert splits["train"]["last"].startswith("2019-01-01 00:00")
    assert splits["val"]["first"].startswith("2019-02") and splits["val"]["last"].startswith(
        "2019-06-01 00:00")
    assert splits["test"]["first"].startswith("2019-07") and splits["test"]["last"].startswith(
        "2019-07")
    assert "pct_missing == 0 kept 8 of 9" in info["event_filter"]
    assert "2 rows of event ids listed more than once dropped" in info["event_filter"]
    assert len(full.test) == 3  # 49 frames: windows at 0, 12, 24
    clip = full.test[1].numpy()  # the July 2019 event, frames 12-36
    np.testing.assert_allclose(clip[:, 0, 0, 0] * 255, np.arange(12, 37) + 70, atol=1e-3)
    assert info["normalization"]["data_units"]["unit"] == "VIL level"
    assert info["normalization"]["data_units"]["scale"] == [255.0]
    small = build("sevir-128", root, tmp_path)
    np.testing.assert_allclose(small.test[1].numpy(), clip[:, :, ::3, ::3], atol=1e-6)


def test_sevir_without_a_pct_missing_column_says_so(root, tmp_path):
    import shutil
    shutil.copytree(root / "sevir", tmp_path / "sevir")
    catalog = pd.read_csv(tmp_path / "sevir/CATALOG.csv").drop(columns="pct_missing")
    catalog.to_csv(tmp_path / "sevir/CATALOG.csv", index=False)
    info = build("sevir", tmp_path, tmp_path).describe()
    assert "no pct_missing column" in info["event_filter"]
    assert info["splits"]["test"]["events"] == 2  # the 2019-08 event is kept


def test_mfmnist_test_clips_come_from_the_test_images(root, tmp_path):
    data = build("mfmnist", root, tmp_path, n_val=2, n_test=2)
    assert float(data.test[0].max()) == pytest.approx(50 / 255)
    assert float(data.val[0].max()) == pytest.approx(200 / 255)
    assert float(first_batch(data).max()) == pytest.approx(200 / 255)


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("name, expected", [
    ("mfmnist", "moving_fmnist/train-images-idx3-ubyte.gz"), ("taxibj", "taxibj/dataset.npz"),
    ("kth", "kth"), ("weatherbench", "weatherbench/2m_temperature"),
    ("sevir", "sevir/CATALOG.csv")])
def test_a_missing_file_is_one_error_naming_the_path_and_where_to_get_it(tmp_path, name, expected):
    with pytest.raises(MissingDataError) as error:
        build(name, tmp_path, tmp_path)
    message = str(error.value)
    assert str(tmp_path / expected) in message and "get the files from" in message


def test_download_names_the_page_for_datasets_without_a_stable_url(capsys):
    from bench.cli import download
    assert download.main(["sevir"]) == 1
    err = capsys.readouterr().err
    assert "s3://sevir" in err and "DIR/sevir/CATALOG.csv" in err
    assert download.DATASETS["mfmnist"][1].name == "t10k-images-idx3-ubyte.gz"


# ------------------------------------------------------------------------------ CLI
def run_smoke(name, root, tmp_path, models):
    code = main(["--dataset", name, "--data-root", str(root), "--preset", "smoke",
                 "--models", *models, "--out", str(tmp_path / "out"),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    records = [json.loads(line) for line in
               (tmp_path / "out" / name / "smoke" / "records.jsonl").read_text().splitlines()]
    assert code == 0 and {r["model"] for r in records} == set(models)
    for r in records:
        assert r["status"] == "ok", r.get("error")
        assert r["dataset_info"]["normalization"]["scale"]
        assert r["dataset_info"]["normalization"]["units"]
    return records


@pytest.mark.parametrize("name", ["mfmnist", "taxibj", "kth", "weatherbench", "sevir-128"])
def test_smoke_run_through_the_cli_and_convlstm_fits_the_frames(root, tmp_path, name):
    # Training ConvLSTM at 128x128 x 30 frames takes minutes on a busy 2-core CPU, so here the
    # grid runs persistence, and ConvLSTM is built for the dataset's frames (as the CLI checks
    # before training); taxibj trains ConvLSTM end to end below.
    from bench.cli.run import build_parser, check_models_fit, make_request
    records = run_smoke(name, root, tmp_path, ["persistence"])
    assert records[0]["dataset_info"]["name"] == name
    args = build_parser().parse_args(["--dataset", name, "--data-root", str(root), "--preset", "smoke",
                       "--models", "convlstm", "--out", str(tmp_path / "o2"),
                       "--cache-dir", str(tmp_path / "cache")])
    data = check_models_fit(make_request(args))
    assert data.name == name


@pytest.mark.slow
def test_smoke_run_trains_convlstm_on_taxibj(root, tmp_path):
    run_smoke("taxibj", root, tmp_path, ["convlstm", "persistence"])


def test_download_help_lists_what_downloads_and_where_to_get_the_rest(capsys):
    from bench.cli import download
    with pytest.raises(SystemExit):
        download.main(["--help"])
    text = capsys.readouterr().out
    downloadable, manual = text.split("not downloadable")
    assert "mnist " in downloadable and "mfmnist" in downloadable
    assert "Fashion-MNIST" in downloadable
    for name, where in (("taxibj", "download_taxibj.sh"), ("kth", "csc.kth.se"),
                        ("weatherbench", "mediatum.ub.tum.de"), ("sevir", "s3://sevir")):
        assert f"  {name} " in manual and where in manual, name
    assert "kth40         reads kth's files" in manual
    assert "sevir-128     reads sevir's files" in manual
    assert download.main(["sevir-128"]) == 1
    assert "s3://sevir" in capsys.readouterr().err


def bilinear_half_pixel(image, out_h, out_w):
    """cv2.resize(float image, (out_w, out_h)) with INTER_LINEAR, written out: source coordinate
    (i + 0.5) * in / out - 0.5, clamped at the edges, no antialiasing."""
    def taps(n_out, n_in):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, None)
        low = np.minimum(np.floor(src).astype(int), n_in - 1)
        return low, np.minimum(low + 1, n_in - 1), src - low
    y0, y1, fy = taps(out_h, image.shape[0])
    x0, x1, fx = taps(out_w, image.shape[1])
    rows = image[y0] * (1 - fy)[:, None] + image[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def test_kth_frames_are_resized_as_openstl_resizes_them():
    # OpenSTL: cv2.resize(np.float32(frame), (128, 128)); KTH frames are 160 x 120
    frames = np.random.default_rng(3).integers(0, 256, (2, 120, 160)).astype(np.float32)
    resized = kth_module._resize(frames)
    assert resized.shape == (2, 128, 128) and resized.dtype == np.float32
    for frame, out in zip(frames, resized, strict=True):
        np.testing.assert_allclose(out, bilinear_half_pixel(frame, 128, 128), atol=1e-3)
