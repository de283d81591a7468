"""Digests of a file's bytes: the one reader behind every sha256 (and md5) of a file."""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

BLOCK = 1 << 20  # bytes read at a time


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``algorithm``: a hashlib name), read in blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, computed again only when its modification time or size changes."""
    stat = Path(path).stat()
    return _sha256_of_version(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _sha256_of_version(path: str, mtime_ns: int, size: int) -> str:
    # Hashing a 10000-clip set takes a moment; a file is re-hashed only when it changes.
    return file_digest(path)
