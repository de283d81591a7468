"""Moving MNIST for the harness: choose the digit source, build the splits, name it honestly.

- Digits: MNIST ``train-images-idx3-ubyte(.gz)`` from ``data_root`` when present, otherwise
  the embedded glyph digits (:mod:`datasets.mmnist.glyphs`, not MNIST).
- Train: clips generated on the fly from the training digits, one stream per seed.
- Validation: ``n_val`` clips generated once from the training digits (fixed seed), cached.
- Test: ``data_root/mnist_test_seq.npy`` when its clips fit the config (two digits,
  ``frame_size`` x ``frame_size`` frames, at least ``in_len + out_len`` of them); otherwise
  ``n_test`` clips generated once from held-out digits (fixed seed), cached.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.clips import HDF5Clips
from ..core.eval_cache import cached_clips, params_digest
from ..core.sequence_data import SequenceData, split_rng
from . import glyphs, mnist_files
from .generator import STEP, generate_clips
from .mnist_files import MovingMNISTTestSeq

EMBEDDED_TRAIN = (10000, 0)  # (count, seed) of the embedded training/validation digits
EMBEDDED_TEST = (2000, 1)  # (count, seed) of the embedded test digits, disjoint from training
MNIST_HELD_OUT = 10000  # last training images kept for a generated test set (1/6 of the file)
VAL_SEED = 0
TEST_SEED = 0  # streams differ per split (split_rng), so equal seeds still differ
GENERATION_BLOCK = 256  # clips per random stream when generating an evaluation set
STANDARD_TEST = {"digits_per_clip": 2, "frame_size": 64}


@dataclass
class MovingMNISTConfig:
    """Moving MNIST options; defaults are the standard benchmark (2 digits, 64x64, 10 -> 10)."""

    digits_per_clip: int = 2
    frame_size: int = 64
    in_len: int = 10
    out_len: int = 10
    n_val: int = 1000  # validation clips (NOT the test set)
    n_test: int = 10000  # test clips when generated (the real file has 10000)
    data_root: str | None = None  # folder with train-images-idx3-ubyte.gz and/or mnist_test_seq.npy
    cache_dir: str = ".cache/datasets"  # where generated evaluation sets are written once

    def __post_init__(self):
        for name, least in (("digits_per_clip", 1), ("frame_size", glyphs.DIGIT_SIZE),
                            ("in_len", 1), ("out_len", 1), ("n_val", 0), ("n_test", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"MovingMNISTConfig.{name} must be an integer >= {least}, "
                                 f"got {value!r}")

    @property
    def seq_len(self) -> int:
        return self.in_len + self.out_len


@dataclass
class Digits:
    """The digit (or item) images of a Moving MNIST-style dataset and how to name them."""

    train: np.ndarray
    test: np.ndarray | None  # held out for a generated test set; None when the file is used
    tag: str  # short name for file names
    description: str


def moving_mnist(config: MovingMNISTConfig) -> SequenceData:
    """Build Moving MNIST as ``config`` asks (see the module docstring)."""
    images_path = test_seq_path = None
    if config.data_root is not None:
        images_path = mnist_files.find_train_images(config.data_root)
        test_seq_path = mnist_files.find_test_seq(config.data_root)
        if images_path is None and test_seq_path is None:
            state = "holds" if Path(config.data_root).is_dir() else "does not exist, so holds"
            raise FileNotFoundError(
                f"data_root {config.data_root!r} {state} none of the Moving MNIST files; "
                f"expected {' or '.join(mnist_files.TRAIN_IMAGES_NAMES)} and/or "
                f"{mnist_files.TEST_SEQ_NAME} (or leave data_root unset for embedded digits)"
            )
    test_file_note = _standard_test_unusable(test_seq_path, config) if test_seq_path else None
    use_test_file = test_seq_path is not None and test_file_note is None
    digits = _digits(images_path, held_out=not use_test_file)
    if config.frame_size < digits.train.shape[1]:
        raise ValueError(f"frame_size {config.frame_size} is smaller than the digits "
                         f"({digits.train.shape[1]} px); use frame_size >= that")

    files: dict[str, Path] = {} if images_path is None else {"digits": images_path}
    files["val"] = generated_split("val", digits.train, config.n_val, VAL_SEED, digits, config)
    val = HDF5Clips(files["val"], config.n_val, config.seq_len)
    if use_test_file:
        files["test"] = test_seq_path
        n_test = min(config.n_test, len(mnist_files.read_mnist_test_seq(test_seq_path)))
        test = MovingMNISTTestSeq(test_seq_path, n_test, config.seq_len)
        test_description = (f"test: {n_test} clips of {mnist_files.TEST_SEQ_NAME} (the standard "
                            f"Moving MNIST test set), frames 0-{config.seq_len - 1}")
    else:
        files["test"] = generated_split("test", digits.test, config.n_test, TEST_SEED, digits,
                                         config)
        test = HDF5Clips(files["test"], config.n_test, config.seq_len)
        test_description = (f"test: {config.n_test} clips generated from held-out digits "
                            f"(seed {TEST_SEED})")
        if test_file_note:
            test_description += f"; {mnist_files.TEST_SEQ_NAME} not used: {test_file_note}"

    def make_train_clips(batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return generate_clips(digits.train, batch_size, config.seq_len, rng, config.frame_size,
                              config.digits_per_clip)

    return SequenceData(
        name=_name(config, real_digits=images_path is not None, standard_test=use_test_file),
        source=f"{digits.description}; val: {config.n_val} clips generated from the training "
               f"digits (seed {VAL_SEED}); {test_description}",
        channels=1,
        height=config.frame_size,
        width=config.frame_size,
        in_len=config.in_len,
        out_len=config.out_len,
        val=val,
        test=test,
        make_train_clips=make_train_clips,
        files=files,
        details={
            "digits_per_clip": config.digits_per_clip,
            "digit_source": "mnist" if images_path else "embedded",
            "train_digits": len(digits.train),
            "train_digits_sha256": _array_sha256(digits.train),
            "test_set": mnist_files.TEST_SEQ_NAME if use_test_file else "generated",
            "step": STEP,
        },
    )


def _name(config: MovingMNISTConfig, real_digits: bool, standard_test: bool) -> str:
    """'mmnist' is the standard benchmark; every departure from it shows in the name."""
    parts = ["mmnist"] if real_digits else ["mmnist", "embedded"]
    if config.digits_per_clip != 2:
        parts.append(f"{config.digits_per_clip}digits")
    if config.frame_size != 64:
        parts.append(f"{config.frame_size}px")
    if standard_test and not real_digits:
        parts.append("stdtest")  # embedded training digits, real MNIST test clips
    if real_digits and not standard_test:
        parts.append("gentest")  # real MNIST digits, but not the standard test file
    return "-".join(parts)


def _standard_test_unusable(path: Path, config: MovingMNISTConfig) -> str | None:
    """Why ``mnist_test_seq.npy`` cannot serve as this config's test set, or None if it can."""
    clips = mnist_files.read_mnist_test_seq(path)  # a memmap: reads the header only
    _, frames, _, height, width = clips.shape
    if config.digits_per_clip != STANDARD_TEST["digits_per_clip"]:
        return f"its clips have 2 digits, config asks for {config.digits_per_clip}"
    if (height, width) != (config.frame_size, config.frame_size):
        return f"its frames are {height}x{width}, config asks for {config.frame_size}"
    if frames < config.seq_len:
        return f"it has {frames} frames per clip, config asks for {config.seq_len}"
    return None


def _digits(images_path: Path | None, held_out: bool) -> Digits:
    if images_path is None:
        train = _embedded(*EMBEDDED_TRAIN)
        test = _embedded(*EMBEDDED_TEST) if held_out else None
        description = (f"digits: {glyphs.SOURCE_EMBEDDED}, {EMBEDDED_TRAIN[0]} digit images for "
                       f"the training and validation clips (seed {EMBEDDED_TRAIN[1]})")
        if held_out:
            description += (f", {EMBEDDED_TEST[0]} digit images for the test clips (seed "
                            f"{EMBEDDED_TEST[1]})")
        return Digits(train, test, "embedded", description)
    images = mnist_images(images_path)
    if not held_out:
        return Digits(images, None, "mnist",
                       f"digits: MNIST {images_path.name}, all {len(images)} for training")
    n_held = min(MNIST_HELD_OUT, len(images) // 6)
    if n_held < 1:
        raise ValueError(f"{images_path}: {len(images)} images; need at least 6 to hold out "
                         "test digits")
    return Digits(
        images[:-n_held], images[-n_held:], "mnist",
        f"digits: MNIST {images_path.name}, first {len(images) - n_held} for training and "
        f"validation, last {n_held} held out for the test set",
    )


def generated_split(split: str, digits: np.ndarray, n_clips: int, seed: int,
                    source: Digits, config: MovingMNISTConfig) -> Path:
    """Write (once) and return the HDF5 file of a generated evaluation split."""
    params = {
        "split": split,
        "n_clips": n_clips,
        "seq_len": config.seq_len,
        "frame_size": config.frame_size,
        "digits_per_clip": config.digits_per_clip,
        "seed": seed,
        "step": STEP,
        "generation_block": GENERATION_BLOCK,
        "digit_source": source.description,
        "digit_count": len(digits),
        "digits_sha256": _array_sha256(digits),
    }
    name = (f"mmnist-{split}-{source.tag}-n{n_clips}-t{config.seq_len}-{config.frame_size}px-"
            f"{config.digits_per_clip}digits-seed{seed}-{params_digest(params)[:12]}.h5")
    shape = (n_clips, config.seq_len, 1, config.frame_size, config.frame_size)

    def make(start: int, stop: int) -> np.ndarray:
        rng = split_rng(split, seed, start // GENERATION_BLOCK)
        return generate_clips(digits, stop - start, config.seq_len, rng, config.frame_size,
                              config.digits_per_clip)

    return cached_clips(Path(config.cache_dir) / name, shape, make, params, GENERATION_BLOCK)


def _array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array)).hexdigest()


def mnist_images(path: Path) -> np.ndarray:
    """The images of an IDX file (MNIST or Fashion-MNIST), read again only when it changes."""
    stat = os.stat(path)
    return _mnist_images(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _mnist_images(path: str, mtime_ns: int, size: int) -> np.ndarray:
    return mnist_files.read_idx_images(path)


@functools.lru_cache(maxsize=4)
def _embedded(count: int, seed: int) -> np.ndarray:
    digits = glyphs.embedded_digits(count, seed)
    digits.setflags(write=False)
    return digits
