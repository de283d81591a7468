"""Your own sequence data: file formats, windows and splits, normalisation, laziness, errors."""
import gc
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest

import models
from bench.cli.main import main
from datasets import (
    DatasetFileError,
    SequenceFileConfig,
    build_dataset,
    datasets_table,
    load_sequence_dataset,
)
from datasets.files.splits import expand_ids
from datasets.synthetic.blobs import write_blobs


def coded_sequences(n=6, t=30, c=1, hw=8):
    """float32 [n, t, c, hw, hw]: pixel (0, 0) holds the sequence id, pixel (0, 1) the frame."""
    frames = np.full((n, t, c, hw, hw), 500.0, np.float32)
    frames[:, :, :, 0, 0] = np.arange(n)[:, None, None]
    frames[:, :, :, 0, 1] = np.arange(t)[None, :, None]
    return frames


def config(path, **extra):
    options = dict(name="coded", path=str(path), in_len=3, out_len=2, stride=1,
                   normalize={"mode": "range", "range": [0, 1000]})
    options.update(extra)
    return SequenceFileConfig(**options)


def decode(window):
    """(sequence id, frame indices) of a float32 [T, C, H, W] window of coded_sequences."""
    values = np.asarray(window)[:, 0, 0, :2] * 1000
    return {int(v) for v in values[:, 0].round()}, values[:, 1].round().astype(int).tolist()


def all_windows(data, n_train=40):
    out = {"val": [decode(w) for w in data.val], "test": [decode(w) for w in data.test]}
    batches = data.train_batches(batch_size=n_train, seed=0)
    out["train"] = [decode(w) for w in next(batches)]
    return out


# ----------------------------------------------------------------------------- formats
def test_hdf5_5d_round_trip_with_attribute_table(tmp_path):
    frames = coded_sequences()
    table = np.array([(i, 1000 + i) for i in range(6)], dtype=[("storm", "i4"), ("time", "i8")])
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["frames"] = frames
        f["meta"] = table
    data = load_sequence_dataset(config(tmp_path / "d.h5", key="frames", table="meta"))
    assert (data.channels, data.height, data.width) == (1, 8, 8)
    info = json.loads(json.dumps(data.describe()))  # JSON-able
    seq, t = decode(data.test[0])
    (seq,) = seq
    np.testing.assert_allclose(data.test[0].numpy(), frames[seq, t[0]:t[0] + 5] / 1000, atol=1e-6)
    rows = info["sequence_attrs"]["table"]
    assert [(r["storm"], r["time"]) for r in rows] == [(i, 1000 + i) for i in range(6)]
    assert rows[seq]["split"] == "test"


def test_hdf5_group_of_sequences_uses_their_attributes(tmp_path):
    frames = coded_sequences(n=5)
    with h5py.File(tmp_path / "g.h5", "w") as f:
        for i in range(5):
            f[f"storms/s{i}"] = frames[i, : 20 + i]  # different lengths
            f[f"storms/s{i}"].attrs["storm_id"] = f"AL{i:02d}"
    data = load_sequence_dataset(config(tmp_path / "g.h5", key="storms"))
    rows = data.describe()["sequence_attrs"]["table"]
    assert [r["storm_id"] for r in rows] == [f"AL{i:02d}" for i in range(5)]
    for split in all_windows(data).values():
        for seqs, t in split:
            assert len(seqs) == 1 and t == list(range(t[0], t[0] + 5))


@pytest.mark.parametrize("compressed", [False, True])
def test_npy_and_npz_round_trip(tmp_path, compressed):
    frames = (coded_sequences(n=5)).astype(np.uint16)
    np.save(tmp_path / "d.npy", frames)
    (np.savez_compressed if compressed else np.savez)(tmp_path / "d.npz", frames=frames,
                                                      other=np.zeros(3))
    npy = load_sequence_dataset(config(tmp_path / "d.npy"))
    npz = load_sequence_dataset(config(tmp_path / "d.npz", key="frames"))
    assert npy.describe()["storage"] == ["lazy"]
    assert npz.describe()["storage"] == (["read whole (compressed .npz member)"] if compressed
                                         else ["lazy"])
    for data in (npy, npz):
        seq, t = decode(data.test[1])
        np.testing.assert_allclose(data.test[1].numpy(),
                                   frames[seq.pop(), t[0]:t[0] + 5] / 1000, atol=1e-6)
    assert npy.describe()["splits"] == npz.describe()["splits"]


def write_predrnn(path, n, rng):
    raw = rng.random((n * 20, 1, 16, 16)).astype(np.float32)
    clips = np.zeros((2, n, 2), np.int32)
    clips[0, :, 0] = np.arange(n) * 20
    clips[1, :, 0] = np.arange(n) * 20 + 10
    clips[..., 1] = 10
    np.savez(path, clips=clips, dims=np.array([[1, 16, 16]], np.int32), input_raw_data=raw)
    return raw


def test_predrnn_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    raws = {s: write_predrnn(tmp_path / f"mm-{s}.npz", n, rng)
            for s, n in (("train", 6), ("valid", 2), ("test", 3))}
    cfg = SequenceFileConfig(name="pmm", paths={"train": str(tmp_path / "mm-train.npz"),
                                                "val": str(tmp_path / "mm-valid.npz"),
                                                "test": str(tmp_path / "mm-test.npz")},
                             normalize={"mode": "none"})
    data = load_sequence_dataset(cfg)
    assert data.describe()["format"] == ["predrnn"] and (data.in_len, data.out_len) == (10, 10)
    assert (len(data.val), len(data.test)) == (2, 3)
    for i in range(3):
        np.testing.assert_array_equal(data.test[i].numpy(), raws["test"][i * 20:(i + 1) * 20])
    batch = next(data.train_batches(4, seed=0)).numpy()
    starts = [int(np.argwhere(raws["train"][:, 0, 0, 0] == b[0, 0, 0, 0])[0, 0]) for b in batch]
    for b, s in zip(batch, starts, strict=True):
        np.testing.assert_array_equal(b, raws["train"][s:s + 20])
    with pytest.raises(DatasetFileError, match="in_len = 10"):
        load_sequence_dataset(SequenceFileConfig(name="p", in_len=4, out_len=4,
                                                 paths=cfg.paths))


# ----------------------------------------------------------------------------- windows, splits
@pytest.mark.parametrize("segment_length", [0, 40])
def test_windows_stay_in_one_sequence_and_splits_share_no_frame(tmp_path, segment_length):
    frames = coded_sequences(n=10, t=60) if not segment_length else coded_sequences(n=1, t=600)
    np.save(tmp_path / "d.npy", frames)
    data = load_sequence_dataset(config(tmp_path / "d.npy", segment_length=segment_length,
                                        split={"method": "shuffled", "seed": 3, "val": 0.2,
                                               "test": 0.3}))
    used = {}
    for split, windows in all_windows(data, n_train=200).items():
        assert windows, split
        for seqs, t in windows:
            assert len(seqs) == 1, "a window straddles two sequences"
            assert t == list(range(t[0], t[0] + 5)), "frames are not consecutive"
            used.setdefault(split, set()).update((next(iter(seqs)), f) for f in t)
    assert not used["train"] & used["test"] and not used["train"] & used["val"]
    assert not used["val"] & used["test"]
    recorded = data.describe()["splits"]
    if not segment_length:  # the recorded sequence ids are the ones the windows come from
        for split in ("train", "val", "test"):
            assert {s for s, _ in used[split]} <= set(expand_ids(recorded[split]["sequences"]))
        ids = [set(expand_ids(recorded[s]["sequences"])) for s in ("train", "val", "test")]
        assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
        assert len(set.union(*ids)) == 10


def test_train_batches_are_deterministic_per_seed(tmp_path):
    np.save(tmp_path / "d.npy", coded_sequences())
    data = load_sequence_dataset(config(tmp_path / "d.npy"))
    a, b, c = (next(data.train_batches(8, seed=s)) for s in (1, 1, 2))
    assert a.dtype == np.float32 or str(a.dtype) == "torch.float32"
    assert (a == b).all() and not (a == c).all()


def test_minmax_statistics_come_from_training_sequences_only(tmp_path):
    frames = np.random.default_rng(0).uniform(10, 20, (10, 12, 2, 4, 4)).astype(np.float32)
    frames[:, :, 1] *= 100  # a second channel in other units
    frames[-2:] += 1000  # the ordered split puts the last sequences in test
    np.save(tmp_path / "d.npy", frames)
    data = load_sequence_dataset(SequenceFileConfig(
        name="mm", path=str(tmp_path / "d.npy"), in_len=2, out_len=2,
        normalize={"mode": "minmax", "per_channel": True}, split={"val": 0.2, "test": 0.2}))
    norm = data.describe()["normalization"]
    train = frames[:6]  # 10 sequences: test 8-9, val 6-7
    np.testing.assert_allclose(norm["offset"], train.min(axis=(0, 1, 3, 4)), rtol=1e-6)
    np.testing.assert_allclose(norm["scale"], np.ptp(train, axis=(0, 1, 3, 4)), rtol=1e-5)
    assert float(data.test[0].min()) == 1.0  # test values beyond the training range: clipped
    val = data.val[0].numpy()
    raw = val * np.array(norm["scale"])[:, None, None] + np.array(norm["offset"])[:, None, None]
    low, high = train.min(axis=(0, 1, 3, 4)), train.max(axis=(0, 1, 3, 4))
    expected = np.clip(frames[6, 0:4], low[:, None, None], high[:, None, None])
    np.testing.assert_allclose(raw, expected, rtol=1e-5)  # the first validation window


# ----------------------------------------------------------------------------- laziness
@pytest.mark.parametrize("kind", ["hdf5", "npy"])
def test_large_files_are_read_lazily(tmp_path, kind):
    n, t, hw = 16, 1000, 128  # 16 x 1000 x 1 x 128 x 128 uint8 = 262 MB
    path = tmp_path / ("big.h5" if kind == "hdf5" else "big.npy")
    block = np.random.default_rng(0).integers(0, 255, (t, 1, hw, hw), dtype=np.uint8)
    if kind == "hdf5":
        with h5py.File(path, "w") as f:
            dset = f.create_dataset("frames", (n, t, 1, hw, hw), np.uint8)
            for i in range(n):
                dset[i] = block
    else:
        out = np.lib.format.open_memmap(path, "w+", np.uint8, (n, t, 1, hw, hw))
        for i in range(n):
            out[i] = block
        out.flush()
        del out
    del block
    gc.collect()
    size = path.stat().st_size
    assert size > 250e6
    process = psutil.Process()
    before = process.memory_info().rss
    data = load_sequence_dataset(SequenceFileConfig(name="big", path=str(path), in_len=10,
                                                    out_len=10))
    for i in range(0, len(data.test), len(data.test) // 10):  # windows from every test sequence
        assert data.test[i].shape == (20, 1, hw, hw)
    batches = data.train_batches(4, seed=0)
    for _ in range(3):
        next(batches)
    growth = process.memory_info().rss - before
    # Reading the file whole would add >= its size; items, allocator and page fault-around
    # noise stay far below it.
    assert growth < size / 3, f"RSS grew by {growth / 1e6:.0f} MB on a {size / 1e6:.0f} MB file"


# ----------------------------------------------------------------------------- errors
def test_missing_key_wrong_rank_and_nan_are_clear_errors(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["frames"] = coded_sequences()
        f["flat"] = np.zeros((30, 64), np.float32)
    with pytest.raises(DatasetFileError, match="no dataset or group 'framez'.*frames"):
        load_sequence_dataset(config(tmp_path / "d.h5", key="framez"))
    with pytest.raises(DatasetFileError, match=r"\(30, 64\) \(rank 2\); expected rank 3, 4 or 5"):
        load_sequence_dataset(config(tmp_path / "d.h5", key="flat"))
    np.savez(tmp_path / "d.npz", frames=coded_sequences())
    with pytest.raises(DatasetFileError, match="no array 'x'"):
        load_sequence_dataset(config(tmp_path / "d.npz", key="x"))
    np.savez(tmp_path / "p.npz", clips=np.zeros((2, 1, 2), np.int32), dims=np.zeros(3))
    with pytest.raises(DatasetFileError, match="input_raw_data"):
        load_sequence_dataset(config(tmp_path / "p.npz", format="predrnn"))
    frames = coded_sequences()
    frames[4, 7, 0, 3, 3] = np.nan  # in what becomes a validation or test sequence
    np.save(tmp_path / "nan.npy", frames)
    with pytest.raises(DatasetFileError, match="sequence 4, frames .* NaN"):
        load_sequence_dataset(config(tmp_path / "nan.npy"))


def test_patch_size_that_does_not_divide_the_frame_names_both():
    with pytest.raises(ValueError, match=r"patch size 4 .*30x30"):
        models.create_model("convlstm", height=30, width=30, patch=4)


def write_toml(tmp_path, name, data_file, **extra):
    lines = [f'name = "{name}"', f'path = "{data_file}"', "in_len = 3", "out_len = 2"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    lines += ["[normalize]", 'mode = "range"', "range = [0, 1000]"]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_reports_a_frame_size_the_patch_does_not_divide(tmp_path, capsys):
    np.save(tmp_path / "d30.npy", np.zeros((6, 20, 1, 30, 30), np.uint8))
    toml = write_toml(tmp_path, "thirty", "d30.npy")
    code = main(["--dataset-config", str(toml), "--models", "convlstm", "--preset", "smoke",
                 "--out", str(tmp_path / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ")
    assert "patch size 4" in err and "30x30" in err
    assert not (tmp_path / "results").exists()  # stopped before any training


def test_list_datasets_and_a_toml_dataset_end_to_end(tmp_path, capsys):
    np.save(tmp_path / "d.npy", coded_sequences(n=6, t=20, hw=8))
    toml = write_toml(tmp_path, "mydata", "d.npy", eval_stride=5)
    assert main(["--list-datasets", "--dataset-config", str(toml)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "shape", "(C"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert {"mmnist", "blobs", "mydata"} <= set(rows)
    header = lines[0]
    assert header.index("shape") < header.index("frames in -> out") < header.index("source")
    for name, shape, frames in (("mmnist", "1 x 64 x 64", "10 -> 10"),
                                ("mydata", "1 x 8 x 8", "3 -> 2")):  # under their headers
        assert rows[name].index(shape) == header.index("shape")
        assert rows[name].index(frames) == header.index("frames in -> out")
    assert "1 x 32 x 32" in rows["blobs"] and "1 x 8 x 8" in rows["mydata"]
    assert "3 -> 2" in rows["mydata"] and datasets_table() in "\n".join(lines)
    assert main(["--dataset-config", str(toml), "--models", "persistence", "--preset", "smoke",
                 "--out", str(tmp_path / "results"), "--no-progress"]) == 0
    records = (tmp_path / "results" / "mydata" / "smoke" / "records.jsonl").read_text()
    record = json.loads(records.splitlines()[0])
    assert record["dataset"] == "mydata" and record["config"]["data"]["in_len"] == 3
    info = record["dataset_info"]
    assert info["normalization"]["scale"] == [1000.0] and "MSE_units" in \
        info["normalization"]["to_units"]
    assert set(info["splits"]) == {"train", "val", "test"}
    assert len(record["metrics"]["per_frame"]["mse"]) == 2


def test_unknown_dataset_names_the_closest(capsys):
    assert main(["--dataset", "blobz", "--models", "persistence"]) == 2
    assert "did you mean 'blobs'" in capsys.readouterr().err


def test_blobs_example_is_generated_on_first_use(tmp_path):
    data = build_dataset("blobs", in_len=4, out_len=4, n_val=3, n_test=5,
                         cache_dir=str(tmp_path))
    assert (data.channels, data.height, data.width) == (1, 32, 32)
    assert (len(data.val), len(data.test)) == (3, 5)
    batch = next(data.train_batches(2, seed=0))
    assert batch.shape == (2, 8, 1, 32, 32) and 0 <= float(batch.min()) <= float(batch.max()) <= 1
    info = data.describe()
    assert info["sequence_attrs"]["rows"] == 48 and info["normalization"]["mode"] == "minmax"
    assert list(tmp_path.glob("blobs-*.h5"))


def test_examples_cli_writes_a_small_blobs_file(tmp_path):
    path = write_blobs(tmp_path / "b.h5", n_sequences=3, n_frames=12, size=16)
    with h5py.File(path) as f:
        assert f["frames"].shape == (3, 12, 1, 16, 16) and len(f["sequences"]) == 3


def test_examples_command_runs_without_a_runpy_warning(tmp_path):
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-W", "error", "-m", "datasets.examples", "blobs",
                           "--out", str(tmp_path / "b.h5"), "--sequences", "2", "--frames", "5",
                           "--size", "8"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "wrote" in done.stdout and (tmp_path / "b.h5").is_file()
