"""Atomic file writes: the one way the harness writes a file that someone may read.

A file is written under a unique temporary name in its own folder (``tempfile.mkstemp``: two
processes writing the same file never share a temporary), flushed, fsynced and moved into
place with ``os.replace``; a reader sees the old file or the new one, never half of one, and a
kill at any moment leaves at most a stray ``.NAME.HOST-PID.XXXX.tmp``, named by its writer so
that :func:`remove_stale_temporaries` can tell a killed writer's file from one being written.
On any failure the temporary is removed. A full disk (ENOSPC, EDQUOT) becomes one
:class:`DiskFullError` naming the file and the space left, instead of a traceback from deep
inside torch or numpy.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import itertools
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """A file could not be written: no space (or quota) left on its filesystem."""

    def __str__(self) -> str:  # the message alone, without "[Errno 28]"
        return self.strerror


def no_space(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it: torch wraps write errors) is a full disk."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DiskFullError) or getattr(error, "errno", None) in _NO_SPACE:
            return True
        if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def free_space(path: str | os.PathLike) -> str:
    """Free space of the filesystem holding ``path`` (or its nearest existing parent), readable."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown space"
    for unit in ("bytes", "KB", "MB", "GB"):
        if free < 1024 or unit == "GB":
            return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
        free /= 1024
    return f"{free:.1f} TB"  # pragma: no cover


def disk_full(path: str | os.PathLike, error: BaseException) -> DiskFullError:
    """The one-line error for a write of ``path`` that ran out of space."""
    return DiskFullError(errno.ENOSPC, f"cannot write {path}: the disk is full "
                                       f"({free_space(path)} free on its filesystem); free some "
                                       "space and run the same command again")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int = 0o644) -> Iterator[Path]:
    """Yields a temporary path beside ``path`` for a writer that wants a file name (h5py,
    matplotlib); on success it is fsynced and moved to ``path``, on any failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync(tmp)
        os.chmod(tmp, mode)  # mkstemp creates 0600; outputs are as readable as any file
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if no_space(error) and not isinstance(error, DiskFullError):
            raise disk_full(path, error) from error
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **options) -> Iterator:
    """``open(path, mode)`` for writing, atomically: ``torch.save(state, handle)``,
    ``np.savez_compressed(handle, ...)``, ``handle.write(text)``."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open mode {mode!r}: accepted: 'w', 'wb' (a whole new file)")
    with atomic_path(path) as tmp, open(tmp, mode, **options) as handle:
        yield handle
        handle.flush()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    with atomic_open(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def _fsync(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Makes the rename itself durable; some filesystems cannot fsync a folder (ignored)."""
    with contextlib.suppress(OSError):
        _fsync(folder)


def move_aside(path: str | os.PathLike, label: str) -> Path | None:
    """Renames ``path`` (a file or folder) to ``<path>.<label>-<UTC time>`` beside it, never
    over an existing name, and returns the new path (None if ``path`` did not exist): what
    is replaced or found damaged is kept for a look, never deleted."""
    path = Path(path)
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for attempt in itertools.count():
        aside = path.with_name(f"{path.name}.{label}-{stamp}" + (f"-{attempt}" if attempt else ""))
        if not aside.exists():
            os.rename(path, aside)
            return aside
    return None  # pragma: no cover


STALE_TEMP_S = 24 * 3600  # a temporary file this old is stale whoever wrote it


def _temp_prefix(path: Path) -> str:
    """``.NAME.HOST-PID.``: the writer of a temporary file."""
    return f".{path.name}.{socket.gethostname()}-{os.getpid()}."


def temporary_folder(path: str | os.PathLike) -> Path:
    """A new folder beside ``path`` named by its writer, as a temporary file is
    (``.NAME.HOST-PID.XXXX.tmp``), for a writer that builds several files before moving them
    in (the report); the caller removes it, or :func:`remove_stale_temporaries` once its
    writer is dead."""
    path = Path(path)
    return Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Removes the temporaries (files or folders) of ``path`` that killed writers left (see
    :func:`_is_stale`), for a file several processes may write (a shared cache, a report);
    returns them."""
    path, removed = Path(path), []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if _is_stale(tmp, path):
                shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # its writer finished, or another process removed it
            pass
    return removed


def _is_stale(tmp: Path, path: Path) -> bool:
    """Written on this host by a process that no longer runs; or, when the writer is on
    another host (or unnamed), untouched for :data:`STALE_TEMP_S`."""
    writer = tmp.name[len(path.name) + 2:-len(".tmp")].rpartition(".")[0]  # HOST-PID
    host, _, pid = writer.rpartition("-")
    if host == socket.gethostname() and pid.isdigit():
        return not _running(int(pid))
    return tmp.stat().st_mtime < time.time() - STALE_TEMP_S


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Removes the temporaries that writers killed mid-write (``kill -9``) left in ``folder``.
    Only for a folder no other process writes into now (a claimed cell's checkpoints)."""
    removed = sorted(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
