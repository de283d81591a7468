"""What the training loop receives: an endless training stream and fixed evaluation splits."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .clips import to_unit_float
from .digests import cached_sha256

# Each split draws from its own random stream, so no seed value makes two splits coincide.
_STREAM_IDS = {"train": 0, "val": 1, "test": 2}


def split_rng(split: str, seed: int, *more: int) -> np.random.Generator:
    """The random generator of ``split`` for ``seed`` (``more``: e.g. a block index)."""
    if split not in _STREAM_IDS:
        raise ValueError(f"unknown split {split!r}; known: {sorted(_STREAM_IDS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return np.random.default_rng([_STREAM_IDS[split], int(seed), *more])


@dataclass
class SequenceData:
    """A sequence dataset: frames are float32 ``[T, C, H, W]`` in [0, 1], ``T = in + out``.

    ``make_train_clips(batch_size, rng)`` returns clips ``[B, T, C, H, W]``, uint8 pixels or
    float32 already in [0, 1]; ``files``
    names the files behind the evaluation splits (and the digit source) for ``describe``.
    """

    name: str
    source: str
    channels: int
    height: int
    width: int
    in_len: int
    out_len: int
    val: Dataset
    test: Dataset
    make_train_clips: Callable[[int, np.random.Generator], np.ndarray] = field(repr=False)
    files: dict[str, Path] = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    # The scores the dataset's community reads beside the image metrics (bench.evaluation.domain):
    # "thresholds" {"values", "unit", "source"} for skill scores (values in the data's units),
    # "latitude_weighting" {"latitudes" (degrees, one per row), "climatology" (float array
    # [C, H, W] in the data's units), "climatology_rule", "unit", "source"} for gridded weather.
    scoring: dict = field(default_factory=dict, repr=False)

    @property
    def seq_len(self) -> int:
        return self.in_len + self.out_len

    def train_batches(self, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
        """Endless float32 batches ``[B, T, C, H, W]`` in [0, 1], made on the fly.

        The same ``seed`` gives the same batches, in the same order.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        rng = split_rng("train", seed)
        while True:
            clips = self.make_train_clips(batch_size, rng)
            # uint8 clips are pixels (divided by 255); float clips are already in [0, 1]
            clips = to_unit_float(clips) if clips.dtype == np.uint8 else clips.astype(np.float32)
            yield torch.from_numpy(clips)

    def scores_declared(self) -> dict:
        """``scoring`` as JSON: what is scored and from what (the climatology array left out)."""
        return {name: {k: v for k, v in entry.items() if not isinstance(v, np.ndarray)}
                for name, entry in self.scoring.items()}

    def describe(self) -> dict:
        """JSON-able summary: identity, sizes, split sizes, and each file with its sha256."""
        return {
            "name": self.name,
            "source": self.source,
            "channels": self.channels,
            "height": self.height,
            "width": self.width,
            "in_len": self.in_len,
            "out_len": self.out_len,
            "splits": {"train": "generated on the fly", "val": len(self.val),
                       "test": len(self.test)},
            **self.details,
            **({"scores": self.scores_declared()} if self.scoring else {}),
            "files": {
                role: {"path": str(path), "sha256": cached_sha256(path)}
                for role, path in self.files.items()
            },
        }

