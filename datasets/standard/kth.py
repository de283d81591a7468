"""KTH human actions, read from the published videos or from extracted frame folders.

Facts and their sources:

- Files: six action folders ``boxing``, ``handclapping``, ``handwaving``, ``jogging``,
  ``running``, ``walking``, each holding ``personNN_<action>_dN_uncomp.avi`` (25 persons x 4
  scenarios; KTH's page, www.csc.kth.se/cvap/actions/), 160 x 120 grayscale at 25 fps. Or, as
  PredRNN / OpenSTL read them, folders of extracted frames ``<action>/personNN_<action>_dN
  [_uncomp]/image_NNNN.png|jpg`` (OpenSTL ``dataloader_kth.py``).
- Frames: first channel, resized to 128 x 128 (bilinear as ``cv2.resize``: half-pixel
  centres, no antialiasing), / 255
  (OpenSTL ``dataloader_kth.py``); 10 -> 20 frames (OpenSTL configs ``kth``), 10 -> 40 for
  ``kth40``.
- Split: persons 1-16 train, 17-25 test (``train_person`` / ``test_person`` in OpenSTL
  ``dataloader_kth.py``, from PredRNN). OpenSTL has no validation set (``dataloader_vali =
  None``: it selects checkpoints on the test persons). Here person 16 is held out of training
  for validation (persons 1-15 train), so that no choice is made on the test set; the test set
  stays exactly persons 17-25, every video and window of them, so test numbers are comparable
  with OpenSTL's KTH table. The models see 15 of the 16 training persons: a slightly smaller
  training set, stated in every record's ``split_rule``.
- Windows: consecutive frames of one video; boxing, handclapping, handwaving and walking give
  non-overlapping windows, jogging and running a window every 3 frames, counted back from
  each video's last frame (OpenSTL ``DataProcess.load_data``). The same rule for all splits.
- Reading: frames are decoded on demand (imageio-ffmpeg for videos, Pillow for images); a
  video's frame count is counted once and cached in the cache dir.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from bench.runtime.files import write_text

from ..core.windows import unit_windows
from ..registry import register_dataset
from .common import (
    MissingDataError,
    listing,
    need_data_root,
    normalization_record,
    require,
    windowed_data,
)

ACTIONS = ("boxing", "handclapping", "handwaving", "walking", "jogging", "running")
DENSE_ACTIONS = ("jogging", "running")  # a window every DENSE_STRIDE frames
DENSE_STRIDE = 3
TRAIN_PERSONS, VAL_PERSONS, TEST_PERSONS = range(1, 16), (16,), range(17, 26)
SIZE = 128
NAME = re.compile(r"person(\d\d)_([a-z]+)_d(\d)(_uncomp)?(\.avi)?$")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
LAYOUT = ("DIR/kth/<action>/personNN_<action>_dN_uncomp.avi (or extracted frames "
          "DIR/kth/<action>/personNN_<action>_dN[_uncomp]/image_NNNN.png), actions "
          + ", ".join(ACTIONS))
GET_FROM = "https://www.csc.kth.se/cvap/actions/ (one zip per action; unzip into DIR/kth/<action>/)"


class KTHVideos:
    """Each sequence is one video (file or frame folder); frames float32 [T, 1, 128, 128] in
    0-255, read on demand."""

    def __init__(self, items: list[Path], cache_dir: str):
        self.items = items
        self.lengths = _frame_counts(items, Path(cache_dir))
        self.frame_shape = (1, SIZE, SIZE)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.items)

    def read(self, seq: int, start: int, stop: int) -> np.ndarray:
        item = self.items[seq]
        if item.is_file():
            frames = _video_frames(item, start, stop)
        else:
            frames = [_first_channel(np.asarray(Image.open(p))) for p in _images(item)[start:stop]]
        return _resize(np.stack(frames))[:, None]


def _first_channel(frame: np.ndarray) -> np.ndarray:
    return frame[..., 0] if frame.ndim == 3 else frame


def _resize(frames: np.ndarray) -> np.ndarray:
    """``[T, h, w]`` -> float32 ``[T, 128, 128]`` as OpenSTL's ``cv2.resize(np.float32(frame),
    (128, 128))``: bilinear with half-pixel centres and no antialiasing (cv2's INTER_LINEAR),
    which ``torch``'s ``interpolate(mode="bilinear", align_corners=False)`` computes too.
    (Pillow's bilinear resize antialiases when it shrinks, as KTH's 160-pixel width is, and
    would blur the frames that published numbers were measured on.)"""
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))[:, None]
    out = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False,
                        antialias=False)
    return out[:, 0].numpy()


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.name.startswith("image") and p.suffix.lower() in IMAGE_SUFFIXES)


def _video_frames(path: Path, start: int, stop: int) -> list[np.ndarray]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bpp=1)
    meta = next(reader)
    width, height = meta["size"]
    out = []
    try:
        for i, raw in enumerate(reader):
            if i >= stop:
                break
            if i >= start:
                out.append(np.frombuffer(raw, np.uint8).reshape(height, width))
    finally:
        reader.close()
    return out


def _frame_counts(items: list[Path], cache_dir: Path) -> list[int]:
    cache_file = cache_dir / "kth-frame-counts.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    counts, changed = [], False
    for item in items:
        if item.is_dir():
            counts.append(len(_images(item)))
            continue
        stat = item.stat()
        key = f"{item.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        if key not in cache:
            import imageio_ffmpeg

            cache[key], changed = imageio_ffmpeg.count_frames_and_secs(str(item))[0], True
        counts.append(int(cache[key]))
    if changed:
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_text(cache_file, json.dumps(cache, indent=0, sort_keys=True))
    return counts


def find_videos(root: Path) -> list[tuple[int, str, Path]]:
    """(person, action, path) of every video or frame folder under ``root``, sorted."""
    found = []
    for action in ACTIONS:
        folder = root / action
        if not folder.is_dir():
            continue
        for item in sorted(folder.iterdir()):
            match = NAME.match(item.name)
            if match and match.group(2) == action and (item.is_dir() or match.group(5)):
                found.append((int(match.group(1)), action, item))
    return found


def _windows(lengths: list[int], actions: list[str], seq_len: int, first_id: int) -> np.ndarray:
    """Each video's windows, counted back from its last frame (OpenSTL ``DataProcess.load_data``)."""
    units = [(first_id + i, 0, length) for i, length in enumerate(lengths)]
    strides = [DENSE_STRIDE if action in DENSE_ACTIONS else seq_len for action in actions]
    return unit_windows(units, seq_len, strides, from_end=True)


def kth_dataset(name: str, in_len: int, out_len: int, data_root, n_val, n_test,
                cache_dir: str):
    root = require(need_data_root(data_root, name, LAYOUT, GET_FROM) / "kth", name, LAYOUT,
                   GET_FROM, folder=True)
    videos = find_videos(root)
    if not videos:
        raise MissingDataError(f"dataset {name!r}: no KTH video or frame folder under {root} "
                               f"(expected {LAYOUT}); get the files from {GET_FROM}")
    persons = {"train": TRAIN_PERSONS, "val": VAL_PERSONS, "test": TEST_PERSONS}
    seq_len = in_len + out_len
    sources, windows, ids = [], {}, 0
    for split, wanted in persons.items():
        chosen = [(a, p) for person, a, p in videos if person in wanted]
        if not chosen:
            raise MissingDataError(
                f"dataset {name!r}: no video of persons {min(wanted)}-{max(wanted)} under {root} "
                f"({split} split; expected {LAYOUT}); get the files from {GET_FROM}")
        source = KTHVideos([p for _, p in chosen], cache_dir)
        windows[split] = _windows(source.lengths, [a for a, _ in chosen], seq_len, ids)
        ids += len(source)
        sources.append(source)
    normalization = normalization_record(0.0, 255.0, "fixed: 8-bit pixels / 255",
                                         units="8-bit pixel value",
                                         source="OpenSTL dataloader_kth.py: resize, / 255")
    details = {
        "publisher_layout": LAYOUT,
        "split_rule": "by person: train persons 1-15, validation person 16 (held out of "
                      "OpenSTL's training persons 1-16), test persons 17-25",
        "window_rule": f"consecutive frames of one video; stride {seq_len} for boxing, "
                       f"handclapping, handwaving, walking and {DENSE_STRIDE} for jogging, "
                       "running, counted back from the last frame",
        "videos": {split: len(s) for split, s in zip(persons, sources, strict=True)},
        "source_files": listing([p for _, _, p in videos], root),
    }
    return windowed_data(
        name=name, source=f"KTH actions ({root}): {len(videos)} videos, 128x128 grayscale, "
                          f"{in_len} -> {out_len}, persons 1-15 train, 16 validation, 17-25 test",
        sources=sources, windows=windows, in_len=in_len, out_len=out_len,
        normalization=normalization, n_val=n_val, n_test=n_test, files={}, details=details)


@register_dataset("kth", shape="1 x 128 x 128", frames="10 -> 20",
                  source="KTH actions: videos or extracted frames, persons 1-15 train, 16 "
                         "validation, 17-25 test (OpenSTL's split, which trains on 1-16)",
                  fixed={"in_len": 10, "out_len": 20, "frame_size": SIZE})
def kth(data_root=None, n_val=None, n_test=None, cache_dir=".cache/datasets", **_ignored):
    return kth_dataset("kth", 10, 20, data_root, n_val, n_test, cache_dir)


@register_dataset("kth40", shape="1 x 128 x 128", frames="10 -> 40",
                  source="KTH actions, 10 -> 40 frames (OpenSTL's KTH 40-frame setting)",
                  fixed={"in_len": 10, "out_len": 40, "frame_size": SIZE})
def kth40(data_root=None, n_val=None, n_test=None, cache_dir=".cache/datasets", **_ignored):
    return kth_dataset("kth40", 10, 40, data_root, n_val, n_test, cache_dir)
