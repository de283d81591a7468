"""The ``blobs`` example dataset (written by ``python -m datasets.examples blobs --out F.h5``).

``blobs``: anisotropic Gaussian blobs that advect with a constant velocity (wrapping around
a periodic domain) and rotate at a constant rate; float32 concentrations (not in [0, 1]:
a blob's peak is between 0.5 and 1.5 and overlapping blobs add), 1 channel, 32x32 frames,
48 sequences of 100 frames. The HDF5 file holds ``frames`` ``[N, T, 1, H, W]`` and the
per-sequence table ``sequences`` (compound: id, n_blobs, speed, spin, seed).
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from bench.runtime.files import atomic_path

BLOBS_VERSION = 1
BLOBS = {"n_sequences": 48, "n_frames": 100, "size": 32, "seed": 0}


def blob_sequence(rng: np.random.Generator, n_frames: int, size: int) -> tuple[np.ndarray, dict]:
    """One sequence ``[T, 1, size, size]`` float32 and its parameters."""
    n_blobs = int(rng.integers(1, 4))
    pos = rng.uniform(0, size, (n_blobs, 2))
    speed = rng.uniform(0.3, 1.2)  # pixels per frame, shared direction jitter per blob
    angle = rng.uniform(0, 2 * np.pi) + rng.normal(0, 0.3, n_blobs)
    velocity = speed * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    spin = rng.uniform(-0.15, 0.15)  # radians per frame
    theta0 = rng.uniform(0, np.pi, n_blobs)
    sigmas = np.stack([rng.uniform(1.5, 3.0, n_blobs), rng.uniform(3.5, 6.0, n_blobs)], axis=1)
    amplitude = rng.uniform(0.5, 1.5, n_blobs)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    frames = np.zeros((n_frames, 1, size, size), np.float32)
    for t in range(n_frames):
        for b in range(n_blobs):
            cy, cx = (pos[b] + t * velocity[b]) % size
            dy = (yy - cy + size / 2) % size - size / 2  # nearest periodic image
            dx = (xx - cx + size / 2) % size - size / 2
            th = theta0[b] + t * spin
            u = np.cos(th) * dx + np.sin(th) * dy
            v = -np.sin(th) * dx + np.cos(th) * dy
            frames[t, 0] += amplitude[b] * np.exp(-0.5 * ((u / sigmas[b, 0]) ** 2
                                                          + (v / sigmas[b, 1]) ** 2))
    return frames, {"n_blobs": n_blobs, "speed": speed, "spin": spin}


def write_blobs(out: str | os.PathLike, n_sequences: int = BLOBS["n_sequences"],
                n_frames: int = BLOBS["n_frames"], size: int = BLOBS["size"],
                seed: int = BLOBS["seed"]) -> Path:
    """Write the blobs dataset to ``out`` (atomically: a temporary file, then a rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = np.zeros(n_sequences, dtype=[("id", "i4"), ("n_blobs", "i4"), ("speed", "f4"),
                                         ("spin", "f4"), ("seed", "i8")])
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        frames = f.create_dataset("frames", (n_sequences, n_frames, 1, size, size),
                                  dtype=np.float32, chunks=(1, min(n_frames, 20), 1, size,
                                                            size), compression="gzip")
        for i in range(n_sequences):
            seq, params = blob_sequence(np.random.default_rng([seed, i]), n_frames, size)
            frames[i] = seq
            table[i] = (i, params["n_blobs"], params["speed"], params["spin"], seed)
        f.create_dataset("sequences", data=table)
        f.attrs.update({"generator": "datasets.examples.blobs", "version": BLOBS_VERSION,
                        "seed": seed})
    return out


def blobs_path(cache_dir: str | os.PathLike) -> Path:
    """The cached blobs file under ``cache_dir``, generated on first use."""
    b = BLOBS
    path = Path(cache_dir) / (f"blobs-v{BLOBS_VERSION}-n{b['n_sequences']}-t{b['n_frames']}-"
                              f"{b['size']}px-seed{b['seed']}.h5")
    if not path.is_file():
        write_blobs(path)
    return path
