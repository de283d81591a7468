"""A trained cell as a predictor: :func:`load_trained` and :class:`TrainedModel`.

The cell is found as ``run_bench.py evaluate`` finds it (bench.grid.trained.find_cell: the newest
successful training record of (model, seed, preset), its best checkpoint), and its model rebuilt
and loaded as evaluate loads it (bench.grid.cross_eval.load_model). :meth:`TrainedModel.predict`
maps frames in the data's units to [0, 1] with the dataset's normalisation (the record's
``dataset_info.normalization``: ``x01 = (x - offset) / scale``; datasets without one are 8-bit
pixels, offset 0 and scale 255), runs the model on the last ``in_len`` frames as the test
protocol does (predictions clipped to [0, 1]), and maps the predictions back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..grid.cross_eval import load_model
from ..grid.trained import find_cell, train_command, training_store
from ..runtime.device import resolve_device
from ..store import RECORDS_FILE, ResultsStore

PIXELS = {"offset": [0.0], "scale": [255.0],
          "rule": "8-bit pixels: x01 = x / 255 (the dataset records no normalisation of its own)"}
RANGE_SLACK = 1e-6  # how far outside [0, 1] a normalised value may be (rounding)


@dataclass
class TrainedModel:
    """A loaded cell: ``model`` (eval mode, on ``device``), the frame shape it takes
    (``channels``, ``height``, ``width``), the ``in_len`` input frames it was trained on, the
    ``out_len`` it predicted, the data's normalisation and the cell's ``provenance``."""

    model: torch.nn.Module
    name: str
    channels: int
    height: int
    width: int
    in_len: int
    out_len: int
    normalization: dict
    provenance: dict
    device: torch.device
    batch_size: int = 8

    @property
    def expected(self) -> str:
        """The input shape in words, for error messages."""
        return (f"[N, T, C, H, W] or [T, C, H, W] with C, H, W = {self.channels}, {self.height}, "
                f"{self.width} and T >= {self.in_len}")

    def value_range(self) -> tuple[np.ndarray, np.ndarray]:
        offset = np.asarray(self.normalization["offset"], np.float64).reshape(-1, 1, 1)
        scale = np.asarray(self.normalization["scale"], np.float64).reshape(-1, 1, 1)
        return offset, scale

    def to_unit(self, frames: np.ndarray, clip: bool = False) -> np.ndarray:
        """``frames`` ``[..., C, H, W]`` in data units -> [0, 1] (a ValueError naming the range
        when a value is outside it, unless ``clip``: then clipped, as the datasets clip)."""
        offset, scale = self.value_range()
        frames = np.asarray(frames, np.float64)
        unit = (frames - offset) / scale
        if not np.isfinite(unit).all():
            raise ValueError("the input frames hold NaN or infinite values")
        if not clip and (unit.min() < -RANGE_SLACK or unit.max() > 1 + RANGE_SLACK):
            lo, hi = offset.ravel(), (offset + scale).ravel()
            raise ValueError(
                f"input values span [{frames.min():.6g}, {frames.max():.6g}]; {self.name} takes "
                f"values in [{_join(lo)}, {_join(hi)}] (the training data's units: "
                f"{self.normalization.get('rule', 'x01 = (x - offset) / scale')}); "
                "pass clip=True (--clip) to clip them as the datasets do")
        return np.clip(unit, 0.0, 1.0).astype(np.float32)

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        offset, scale = self.value_range()
        return (unit * scale + offset).astype(np.float32)

    def check_frames(self, frames) -> np.ndarray:
        """``frames`` as a ``[N, T, C, H, W]`` array; a ValueError naming the expected shape."""
        frames = np.asarray(frames)
        if not (np.issubdtype(frames.dtype, np.number) or frames.dtype == np.bool_):
            raise ValueError(f"input frames of type {frames.dtype}: expected numbers, "
                             f"{self.expected}")
        batch = frames[None] if frames.ndim == 4 else frames
        if batch.ndim != 5 or batch.shape[2:] != (self.channels, self.height, self.width):
            raise ValueError(f"input frames of shape {frames.shape}: {self.name} takes "
                             f"{self.expected}")
        if batch.shape[1] < self.in_len:
            raise ValueError(f"input frames of shape {frames.shape} hold {batch.shape[1]} frames; "
                             f"{self.name} needs at least {self.in_len} (it was trained on "
                             f"{self.in_len} input frames): {self.expected}")
        return batch

    @torch.no_grad()
    def predict(self, frames, n_future: int | None = None, clip: bool = False) -> np.ndarray:
        """The ``n_future`` frames (default: ``out_len``, as trained) after the last ``in_len``
        of ``frames`` (``[N, T, C, H, W]`` or ``[T, C, H, W]``, in the data's units); float32
        ``[N, n_future, C, H, W]`` (or ``[n_future, C, H, W]``), in the data's units."""
        n_future = self.out_len if n_future is None else n_future
        if isinstance(n_future, bool) or not isinstance(n_future, int) or n_future < 1:
            raise ValueError(f"n_future must be an integer >= 1; got {n_future!r}")
        batch = self.check_frames(frames)
        unit = self.to_unit(batch[:, -self.in_len:], clip)
        outputs = []
        for start in range(0, len(unit), self.batch_size):
            chunk = torch.from_numpy(unit[start:start + self.batch_size]).to(self.device)
            future = self.model(chunk, self.in_len, n_future).future
            outputs.append(future.float().clamp(0, 1).cpu().numpy())
        predicted = self.from_unit(np.concatenate(outputs))
        return predicted[0] if np.asarray(frames).ndim == 4 else predicted


def load_trained(store, model: str, seed: int = 0, dataset: str | None = None,
                 preset: str | None = None, config_hash: str | None = None,
                 device: str | torch.device = "cpu") -> TrainedModel:
    """The trained cell (``model``, ``seed``) as a :class:`TrainedModel`.

    ``store``: a results folder holding ``records.jsonl`` (``results/mmnist-embedded/quick``), or
    the results root (``results``, as ``--out``) with ``dataset`` (the training run's
    ``--dataset``, or its results folder's name) and ``preset`` (default quick).
    ``config_hash`` (or its start) picks one configuration where several were trained."""
    root = Path(store)
    if (root / RECORDS_FILE).is_file():
        folder = root
    elif dataset is None:
        raise ValueError(f"{root} holds no {RECORDS_FILE}: pass a results folder that does, or "
                         "the results root with dataset= (and preset=)")
    else:
        folder = training_store(root, dataset, preset or "quick")
    records = ResultsStore(folder).records()
    preset = preset or _preset_of(records, model, seed, folder)
    command = train_command(records, dataset or folder.parent.name, preset, str(root))
    cell = find_cell(records, folder, model, seed, preset, config_hash, command)
    device = resolve_device(device) if isinstance(device, str) else device
    record = cell["record"]
    info = record["dataset_info"]
    return TrainedModel(
        model=load_model(cell, device).eval(), name=model, channels=info["channels"],
        height=info["height"], width=info["width"], in_len=info["in_len"],
        out_len=info["out_len"], normalization=info.get("normalization") or PIXELS,
        provenance=provenance(cell), device=device,
        batch_size=record["config"].get("train", {}).get("eval_batch_size", 8) or 8,
    )


def provenance(cell: dict) -> dict:
    """Where the trained model comes from: the record's identity and the checkpoint's."""
    record = cell["record"]
    train = record.get("train") or {}
    return {
        "model": record["model"], "seed": record["seed"], "dataset": record["dataset"],
        "preset": record["preset"], "config_hash": record["config_hash"],
        "git_commit": record.get("git_commit"), "finished_at": record.get("finished_at"),
        "device_kind": record.get("device_kind"), "store": str(cell["folder"] / RECORDS_FILE),
        "checkpoint": str(cell["checkpoint"]) if cell["checkpoint"] else None,
        "checkpoint_sha256": cell["sha256"], "epoch": train.get("best_epoch"),
        "val_mse": train.get("best_val_mse"),
        "metrics": (record.get("metrics") or {}).get("headline"),
        "config": record["config"],
    }


def _preset_of(records: list[dict], model: str, seed: int, folder: Path) -> str:
    """The preset of the store's finished training of (model, seed), when it holds one."""
    presets = {r["preset"] for r in records if r["mode"] == "train" and r["model"] == model
               and r["seed"] == seed and r["status"] == "ok"}
    return presets.pop() if len(presets) == 1 else folder.name


def _join(values: np.ndarray) -> str:
    return ", ".join(f"{v:g}" for v in values) if len(values) > 1 else f"{values[0]:g}"
