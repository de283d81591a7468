"""Moving MNIST: generator motion, file readers, cached evaluation splits, embedded digits."""
from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import datasets.mmnist.data as mmnist_data
from datasets import MovingMNISTConfig, embedded_digits, generate_clips, moving_mnist, trajectories
from datasets.core.eval_cache import cached_clips
from datasets.mmnist.generator import bounce_path, compose_clips, pixel_path
from datasets.mmnist.glyphs import SOURCE_EMBEDDED, embedded_digits_with_labels
from datasets.mmnist.mnist_files import read_idx_images, read_mnist_test_seq


def config(tmp_path: Path, **overrides) -> MovingMNISTConfig:
    fields = {"n_val": 6, "n_test": 8, "cache_dir": str(tmp_path / "cache")}
    return MovingMNISTConfig(**{**fields, **overrides})


def write_idx(path: Path, images: np.ndarray, magic: int = 2051) -> None:
    header = np.array([magic, *images.shape], dtype=">u4").tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())


# --- the generator -----------------------------------------------------------------------


def reference_trajectory(x: float, y: float, theta: float, seq_len: int, step: float = 0.1):
    """The reference ``_get_random_trajectory`` loop, scalar, as published."""
    v_y, v_x = np.sin(theta), np.cos(theta)
    ys, xs = [], []
    for _ in range(seq_len):
        y += v_y * step
        x += v_x * step
        if x <= 0:
            x, v_x = 0.0, -v_x
        if x >= 1.0:
            x, v_x = 1.0, -v_x
        if y <= 0:
            y, v_y = 0.0, -v_y
        if y >= 1.0:
            y, v_y = 1.0, -v_y
        ys.append(y)
        xs.append(x)
    return np.array(ys), np.array(xs)


def test_bounce_path_matches_the_reference_loop():
    rng = np.random.default_rng(3)
    starts, angles = rng.random((50, 2)), rng.random(50) * 2 * np.pi
    path = bounce_path(starts, angles, seq_len=60)
    for k in range(50):
        ys, xs = reference_trajectory(starts[k, 1], starts[k, 0], angles[k], 60)
        np.testing.assert_allclose(path[k, :, 0], ys, atol=1e-12)
        np.testing.assert_allclose(path[k, :, 1], xs, atol=1e-12)


def test_pixel_positions_are_truncated_not_rounded():
    # From the centre moving right: x = 0.6, 0.7, ... of 36 px is 21.6, 25.2, 28.8, 32.4; in
    # floating point the fifth step lands just short of the wall (0.99999..., 35.99 px), as in
    # the reference loop, and the sixth is clamped to it.
    path = pixel_path(np.array([0.5, 0.5]), np.array(0.0), seq_len=8, free=36)
    np.testing.assert_array_equal(path[:, 1], [21, 25, 28, 32, 35, 36, 32, 28])
    np.testing.assert_array_equal(path[:, 0], [18] * 8)


@pytest.mark.parametrize("frame_size", [64, 48])
def test_digits_stay_inside_and_turn_only_at_the_walls(frame_size):
    free = frame_size - 28
    pos = trajectories(200, 80, np.random.default_rng(0), frame_size, digits_per_clip=2)
    assert pos.shape == (200, 2, 80, 2) and pos.dtype == np.int64
    assert pos.min() == 0 and pos.max() == free  # walls are reached, never crossed
    turns = 0
    for series in pos.transpose(0, 1, 3, 2).reshape(-1, 80):
        moving = series[np.r_[True, np.diff(series) != 0]]  # drop frames that did not move
        step = np.sign(np.diff(moving))
        turn = np.nonzero(step[1:] != step[:-1])[0] + 1  # index into `moving`
        assert set(moving[turn].tolist()) <= {0, free}, series
        turns += len(turn)
    assert turns > 1000  # plenty of bounces were checked


def test_digits_move_a_tenth_of_the_free_range_per_frame():
    pos = trajectories(100, 20, np.random.default_rng(1), 64, 2).astype(float)
    step = np.linalg.norm(np.diff(pos, axis=2), axis=-1)
    # Truncation to whole pixels moves each coordinate by at most one pixel either way.
    assert np.all(step <= 3.6 + 2 * np.sqrt(2))
    assert abs(np.median(step) - 3.6) < 1.0


def test_compose_pastes_each_digit_at_its_position_by_max():
    rng = np.random.default_rng(2)
    patches = rng.integers(0, 256, (3, 2, 28, 28), dtype=np.uint8)
    positions = rng.integers(0, 64 - 28 + 1, (3, 2, 5, 2))
    expected = np.zeros((3, 5, 1, 64, 64), dtype=np.uint8)
    for n in range(3):
        for k in range(2):
            for t in range(5):
                y, x = positions[n, k, t]
                window = expected[n, t, 0, y : y + 28, x : x + 28]
                np.maximum(window, patches[n, k], out=window)
    np.testing.assert_array_equal(compose_clips(patches, positions, 64), expected)


@pytest.mark.parametrize("digits_per_clip", [1, 2, 3])
def test_each_frame_shows_digits_per_clip_digits(digits_per_clip):
    marker = np.zeros((5, 28, 28), dtype=np.uint8)
    marker[:, 0, 0] = 255  # one pixel per digit: a frame's bright pixels count its digits
    clips = generate_clips(marker, 40, 20, np.random.default_rng(4), 64, digits_per_clip)
    per_frame = (clips > 0).sum(axis=(2, 3, 4))
    assert per_frame.max() == digits_per_clip
    assert np.mean(per_frame == digits_per_clip) > 0.9  # fewer only when two coincide


def test_clip_values_and_float_batches_stay_in_range(tmp_path):
    digits = embedded_digits(50, seed=0)
    clips = generate_clips(digits, 8, 20, np.random.default_rng(0))
    assert clips.dtype == np.uint8 and clips.shape == (8, 20, 1, 64, 64)
    assert clips.max() > 200  # digit strokes reach near full intensity
    data = moving_mnist(config(tmp_path))
    batch = next(data.train_batches(4, seed=0))
    assert batch.dtype == torch.float32 and batch.shape == (4, 20, 1, 64, 64)
    assert 0.0 <= batch.min() and batch.max() <= 1.0 and batch.max() > 0.5
    assert torch.equal(batch * 255, (batch * 255).round())  # exactly uint8 / 255
    item = data.val[0]
    assert item.dtype == torch.float32 and item.shape == (20, 1, 64, 64)
    assert 0.0 <= item.min() and item.max() <= 1.0


def test_generation_is_deterministic_per_seed_and_differs_across_seeds(tmp_path):
    digits = embedded_digits(50, seed=0)
    first = generate_clips(digits, 4, 10, np.random.default_rng(7))
    assert np.array_equal(first, generate_clips(digits, 4, 10, np.random.default_rng(7)))
    assert not np.array_equal(first, generate_clips(digits, 4, 10, np.random.default_rng(8)))

    data = moving_mnist(config(tmp_path))
    a, b, c = (data.train_batches(2, seed=s) for s in (5, 5, 6))
    a_batches = [next(a) for _ in range(3)]
    for x, y in zip(a_batches, [next(b) for _ in range(3)], strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a_batches[0], next(c))
    assert not torch.equal(a_batches[0], a_batches[1])  # the stream moves on


# --- file readers ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"])
def test_idx_reader_round_trip(tmp_path, name):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, images)
    read = read_idx_images(tmp_path / name)
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, images)


def test_idx_reader_rejects_bad_magic_and_truncated_files(tmp_path):
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "bad.gz", images, magic=1234)
    with pytest.raises(ValueError, match="magic number 1234.*expected 2051"):
        read_idx_images(tmp_path / "bad.gz")
    write_idx(tmp_path / "labels.gz", images, magic=2049)
    with pytest.raises(ValueError, match="label file"):
        read_idx_images(tmp_path / "labels.gz")
    write_idx(tmp_path / "short", images)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-10])
    with pytest.raises(ValueError, match="expected 2368"):
        read_idx_images(tmp_path / "short")


def write_test_seq(folder: Path, n: int = 5) -> np.ndarray:
    seq = np.random.default_rng(9).integers(0, 256, (20, n, 64, 64), dtype=np.uint8)
    np.save(folder / "mnist_test_seq.npy", seq)
    return seq


def test_mnist_test_seq_reader_puts_sequences_first(tmp_path):
    seq = write_test_seq(tmp_path)
    clips = read_mnist_test_seq(tmp_path / "mnist_test_seq.npy")
    assert clips.shape == (5, 20, 1, 64, 64) and clips.dtype == np.uint8
    assert isinstance(clips.base, np.memmap) or isinstance(clips, np.memmap)
    np.testing.assert_array_equal(clips[3, :, 0], seq[:, 3])
    np.save(tmp_path / "float.npy", seq.astype(np.float32))
    with pytest.raises(ValueError, match="dtype float32; expected uint8"):
        read_mnist_test_seq(tmp_path / "float.npy")
    np.save(tmp_path / "rank3.npy", seq[0])
    with pytest.raises(ValueError, match="rank 3; expected rank 4"):
        read_mnist_test_seq(tmp_path / "rank3.npy")


def test_mnist_test_seq_serves_as_the_test_split(tmp_path):
    seq = write_test_seq(tmp_path)
    data = moving_mnist(config(tmp_path, data_root=str(tmp_path), in_len=6, out_len=4))
    assert len(data.test) == 5  # all the file has (n_test asked for 8)
    expected = torch.from_numpy(seq[:10, 2, None].astype(np.float32) / 255)
    assert torch.equal(data.test[2], expected)
    assert data.name == "mmnist-embedded-stdtest"
    assert "mnist_test_seq.npy" in data.source and SOURCE_EMBEDDED in data.source
    info = data.describe()
    digest = hashlib.sha256((tmp_path / "mnist_test_seq.npy").read_bytes()).hexdigest()
    assert info["files"]["test"]["sha256"] == digest
    assert info["splits"] == {"train": "generated on the fly", "val": 6, "test": 5}

    assert len(moving_mnist(config(tmp_path, data_root=str(tmp_path), n_test=3)).test) == 3
    other = moving_mnist(config(tmp_path, data_root=str(tmp_path), frame_size=48))
    assert len(other.test) == 8 and other.test[0].shape == (20, 1, 48, 48)
    assert "not used: its frames are 64x64" in other.source
    three = moving_mnist(config(tmp_path, data_root=str(tmp_path), digits_per_clip=3))
    assert len(three.test) == 8 and "not used: its clips have 2 digits" in three.source


def pixel_values(clips) -> set[int]:
    stacked = torch.stack([clips[i] for i in range(len(clips))])
    return set((torch.unique(stacked) * 255).round().int().tolist())


def test_real_digits_hold_out_the_last_sixth_for_a_generated_test_set(tmp_path):
    # Training images are all 100, held-out ones all 200: pixels reveal which digits were used.
    images = np.concatenate([np.full((50, 28, 28), 100), np.full((10, 28, 28), 200)])
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    data = moving_mnist(config(tmp_path, data_root=str(tmp_path)))
    assert data.name == "mmnist-gentest"
    assert "first 50 for training" in data.source and "last 10 held out" in data.source
    assert pixel_values(data.test) == {0, 200}
    assert pixel_values(data.val) == {0, 100}
    assert pixel_values(next(data.train_batches(8, seed=0))) == {0, 100}
    assert set(data.describe()["files"]) == {"digits", "val", "test"}

    write_test_seq(tmp_path)  # with the standard test file, all digits train
    assert moving_mnist(config(tmp_path, data_root=str(tmp_path))).name == "mmnist"


def test_embedded_test_digits_are_not_training_digits():
    digits = mmnist_data._digits(None, held_out=True)
    train = {image.tobytes() for image in digits.train}
    assert len(digits.test) > 0 and not any(image.tobytes() in train for image in digits.test)


def test_data_root_without_the_files_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz.*mnist_test_seq.npy") \
            as err:
        moving_mnist(config(tmp_path, data_root=str(tmp_path)))
    assert str(tmp_path) in str(err.value)


def test_config_values_are_checked(tmp_path):
    with pytest.raises(ValueError, match="frame_size must be an integer >= 28, got 20"):
        config(tmp_path, frame_size=20)
    with pytest.raises(ValueError, match="out_len must be an integer >= 1, got 0"):
        config(tmp_path, out_len=0)


# --- cached evaluation sets --------------------------------------------------------------


def test_generated_eval_sets_are_written_once_and_reused(tmp_path, monkeypatch):
    first = moving_mnist(config(tmp_path))
    files = {k: Path(v["path"]) for k, v in first.describe()["files"].items()}
    assert set(files) == {"val", "test"} and all(p.suffix == ".h5" for p in files.values())
    stamps = {k: (p.stat().st_mtime_ns, p.stat().st_ino) for k, p in files.items()}
    with h5py.File(files["test"]) as f:
        assert f["clips"].shape == (8, 20, 1, 64, 64) and f["clips"].dtype == np.uint8
        assert f.attrs["split"] == "test" and f.attrs["n_clips"] == 8
        assert SOURCE_EMBEDDED in f.attrs["digit_source"]

    def no_generation(*args, **kwargs):
        raise AssertionError("evaluation clips were generated again")

    monkeypatch.setattr(mmnist_data, "generate_clips", no_generation)
    second = moving_mnist(config(tmp_path))
    assert {k: (p.stat().st_mtime_ns, p.stat().st_ino) for k, p in files.items()} == stamps
    assert torch.equal(first.test[3], second.test[3])
    assert sorted(os.listdir(tmp_path / "cache")) == sorted(p.name for p in files.values())
    monkeypatch.undo()
    bigger = moving_mnist(config(tmp_path, n_test=9))  # other parameters, another file
    assert Path(bigger.describe()["files"]["test"]["path"]) != files["test"]
    assert torch.equal(bigger.val[0], first.val[0])  # validation is unchanged


def test_an_interrupted_write_leaves_no_file(tmp_path):
    def failing(start, stop):
        if start > 0:
            raise KeyboardInterrupt
        return np.zeros((stop - start, 2, 1, 4, 4), dtype=np.uint8)

    target = tmp_path / "clips.h5"
    with pytest.raises(KeyboardInterrupt):
        cached_clips(target, (5, 2, 1, 4, 4), failing, {"split": "test"}, block=2)
    assert list(tmp_path.iterdir()) == []


def test_validation_and_test_clips_differ(tmp_path):
    data = moving_mnist(config(tmp_path, n_val=8, n_test=8))
    val = torch.stack([data.val[i] for i in range(8)])
    test = torch.stack([data.test[i] for i in range(8)])
    assert not any(torch.equal(v, t) for v in val for t in test)
    assert data.describe()["files"]["val"] != data.describe()["files"]["test"]


def test_three_digits_on_48_pixels(tmp_path):
    data = moving_mnist(config(tmp_path, frame_size=48, digits_per_clip=3, in_len=4, out_len=3))
    assert data.name == "mmnist-embedded-3digits-48px"
    assert (data.channels, data.height, data.width) == (1, 48, 48)
    assert next(data.train_batches(2, seed=0)).shape == (2, 7, 1, 48, 48)
    assert data.test[0].shape == data.val[0].shape == (7, 1, 48, 48)


# --- embedded digits ---------------------------------------------------------------------


def test_embedded_digits_are_distinct_and_fixed_by_seed():
    images, labels = embedded_digits_with_labels(300, seed=0)
    assert images.shape == (300, 28, 28) and images.dtype == np.uint8
    assert len(np.unique(images.reshape(300, -1), axis=0)) == 300
    assert set(labels.tolist()) == set(range(10))
    assert images.max() > 200 and (images > 0).mean() < 0.5  # bright strokes, dark background
    assert np.array_equal(images, embedded_digits(300, seed=0))
    assert np.array_equal(images[:40], embedded_digits(40, seed=0))  # prefix of a longer run
    other = embedded_digits(300, seed=1)
    assert not any(np.array_equal(a, b) for a, b in zip(images, other, strict=True))
