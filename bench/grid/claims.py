"""Per-cell claims: which process is running a cell of the grid right now.

Several runs of one grid into one folder (by hand, shards, a relaunch while the workers of a
killed torchrun agent still write) must split the work, never train one cell twice at once nor
resume each other's half-written checkpoints. A cell is claimed by an exclusive ``flock`` on
``<folder>/claims/<cell>.lock``, held while this process runs the cell. The operating system
drops the lock when its holder exits or dies (even ``kill -9``), so a dead holder's claim is
free to take at once; the file keeps the holder's pid and host for the message of whoever finds
it taken. Lock files are left in place: removing one while another process waits on it would
let two processes hold "the same" claim.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

from datasets import safe_component

from ..runtime.clock import now

CLAIMS = "claims"


def claim_path(folder: str | os.PathLike, record: dict) -> Path:
    """The lock file of a record's cell: its mode, model, seed and config hash (the cell's
    checkpoint folder is named from the same, so one claim guards it too)."""
    name = "__".join((record["mode"], safe_component(record["model"], "model name"),
                      f"seed{record['seed']}", safe_component(record["config_hash"], "config hash")))
    return Path(folder) / CLAIMS / f"{name}.lock"


class Claim:
    """A held claim; :meth:`release` (or the process ending) gives it back."""

    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def try_claim(path: Path) -> Claim | str:
    """The claim at ``path`` if no live process holds it, else who holds it (for a message)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        os.close(fd)
        return holder or "another process"
    except BaseException:
        os.close(fd)
        raise
    with contextlib.suppress(OSError):  # who holds it is only for messages (a full disk...)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {now()}\n".encode(), 0)
    return Claim(path, fd)
