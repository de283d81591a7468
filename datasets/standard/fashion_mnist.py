"""Moving Fashion-MNIST: the Moving MNIST generator with Fashion-MNIST items.

Facts and their sources:

- Files: Fashion-MNIST's IDX files ``train-images-idx3-ubyte.gz`` (60000 x 28 x 28) and
  ``t10k-images-idx3-ubyte.gz`` (10000 x 28 x 28), as published by Zalando Research
  (github.com/zalandoresearch/fashion-mnist), in ``DATA_ROOT/moving_fmnist/`` where OpenSTL
  keeps them (``tools/prepare_data/download_mfmnist.sh``).
- Clips: two items bouncing in a 64 x 64 canvas, 10 -> 10 frames, the standard Moving MNIST
  generator (Srivastava, Mansimov and Salakhutdinov, ICML 2015: :mod:`datasets.mmnist.generator`;
  OpenSTL ``openstl/datasets/dataloader_moving_mnist.py`` with ``data_name='fmnist'``),
  values / 255.
- Split: training clips are generated on the fly from the training images; validation clips
  once from the training images (fixed seed); test clips once from the test images (fixed
  seed), so no test clip holds a training item. (OpenSTL ships a generated
  ``fmnist_test_seq.npy`` instead; the generator and item source are the same.)
"""
from __future__ import annotations

import numpy as np

from ..core.clips import HDF5Clips
from ..core.sequence_data import SequenceData
from ..mmnist.data import Digits, MovingMNISTConfig, generated_split, mnist_images
from ..mmnist.generator import STEP, generate_clips
from ..registry import register_dataset
from .common import need_data_root, normalization_record, require

FOLDER = "moving_fmnist"
TRAIN_NAME, TEST_NAME = "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"
LAYOUT = f"DIR/{FOLDER}/{TRAIN_NAME} and DIR/{FOLDER}/{TEST_NAME}"
GET_FROM = ("github.com/zalandoresearch/fashion-mnist, or: python run_bench.py download mfmnist "
            "--data-root DIR")
VAL_SEED = TEST_SEED = 0


@register_dataset("mfmnist", shape="1 x 64 x 64", frames="10 -> 10",
                  source="Moving Fashion-MNIST: two Fashion-MNIST items bouncing in 64x64 (the "
                         "Moving MNIST generator; test clips from the t10k images)",
                  fixed={"in_len": 10, "out_len": 10, "frame_size": 64})
def mfmnist(data_root: str | None = None, n_val: int = 1000, n_test: int = 10000,
            cache_dir: str = ".cache/datasets", **_ignored) -> SequenceData:
    root = need_data_root(data_root, "mfmnist", LAYOUT, GET_FROM)
    paths = {role: require(root / FOLDER / name, "mfmnist", LAYOUT, GET_FROM)
             for role, name in (("train_images", TRAIN_NAME), ("test_images", TEST_NAME))}
    train, test = mnist_images(paths["train_images"]), mnist_images(paths["test_images"])
    config = MovingMNISTConfig(n_val=n_val, n_test=n_test, cache_dir=cache_dir)
    items = Digits(train, test, "fashion", f"Fashion-MNIST {TRAIN_NAME} ({len(train)} items) "
                                            f"/ {TEST_NAME} ({len(test)} items)")
    files = dict(paths)
    files["val"] = generated_split("val", train, n_val, VAL_SEED, items, config)
    files["test"] = generated_split("test", test, n_test, TEST_SEED, items, config)

    def make_train_clips(batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return generate_clips(train, batch_size, config.seq_len, rng, 64, 2)

    return SequenceData(
        name="mfmnist",
        source=f"Moving Fashion-MNIST: train clips generated on the fly from {TRAIN_NAME} "
               f"({len(train)} items); val: {n_val} clips from the training items (seed "
               f"{VAL_SEED}); test: {n_test} clips from {TEST_NAME} ({len(test)} items, seed "
               f"{TEST_SEED})",
        channels=1, height=64, width=64, in_len=10, out_len=10,
        val=HDF5Clips(files["val"], n_val, config.seq_len),
        test=HDF5Clips(files["test"], n_test, config.seq_len),
        make_train_clips=make_train_clips, files=files,
        details={"publisher_layout": LAYOUT, "digits_per_clip": 2, "step": STEP,
                 "split_rule": "train and val clips from the training images; test clips from "
                               "the t10k test images",
                 "normalization": normalization_record(
                     0.0, 255.0, "fixed: uint8 pixels / 255", units="8-bit pixel value",
                     source="Moving MNIST generator (Srivastava, Mansimov and "
                            "Salakhutdinov, ICML 2015)")},
    )

