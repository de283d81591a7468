"""The results store: an append-only JSON Lines file, one record per finished (or failed) cell."""
from __future__ import annotations

import fcntl
import json
import os
import warnings
from pathlib import Path

from .runtime.files import disk_full, no_space

RECORDS_FILE = "records.jsonl"


def cell_key(record: dict) -> tuple:
    """What identifies a cell of the grid: a re-run with the same key is skipped once it succeeded.

    The kind of device and the precision are part of it: a CPU record never stands in for a GPU
    run (nor a bf16 run for a float32 one). Records written before these fields existed match
    no new cell.
    """
    return (record["mode"], record["model"], record["dataset"], record["preset"], record["seed"],
            record["config_hash"], record.get("device_kind"), record.get("precision"))


# The top-level keys every reader of a record relies on (cell_key, done, latest, the report),
# with their JSON types; docs/records.md describes every key. A record lacking one of them, or
# holding a value of another type, is not a result record.
RECORD_SCHEMA: dict[str, type] = {
    "mode": str, "model": str, "dataset": str, "preset": str, "seed": int,
    "config_hash": str, "status": str, "device_name": str,
}
# Keys that may be missing or null, but when present hold this type.
OPTIONAL_FIELDS: dict[str, type] = {
    "error": str, "metrics": dict, "train": dict, "cost": dict, "config": dict,
    "dataset_info": dict, "device_kind": str, "precision": str, "finished_at": str,
}
_JSON_TYPE = {str: "a string", int: "an integer", dict: "an object"}


def record_problem(record) -> str | None:
    """Why ``record`` (a parsed JSON line) is not a result record, or None when it is one."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    missing = [key for key in RECORD_SCHEMA if key not in record]
    if missing:
        return "missing " + ", ".join(repr(key) for key in missing)
    for fields, optional in ((RECORD_SCHEMA, False), (OPTIONAL_FIELDS, True)):
        for key, kind in fields.items():
            value = record.get(key)
            if optional and value is None:
                continue
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                return f"{key!r} is {json.dumps(value)[:40]}, not {_JSON_TYPE[kind]}"
    return None


def one_line(text) -> str:
    """``text`` with its line breaks folded into "; ", so an error message fits one row of a
    Markdown table (the record keeps the original)."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


class ResultsStore:
    """Appends records under an exclusive lock, each as one line written and fsynced at once."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / RECORDS_FILE

    def append(self, record: dict) -> None:
        """Appends ``record`` as one fsynced line. A failed write (a full disk) truncates the file
        back to its size before it, so no half record is ever left; a full disk is one
        DiskFullError naming the file and the space left."""
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
        with open(self.path, "a+b") as handle:  # a+: readable, for pread
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._append_line(handle.fileno(), line.encode("utf-8"))
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _append_line(self, fd: int, data: bytes) -> None:
        """Writes ``data`` at the end of the locked file; on any failure restores its old size."""
        size = os.fstat(fd).st_size
        # A crash mid-write can leave a last line without its newline: end it first, so that
        # only the damaged record is lost, never this one.
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except BaseException as error:
            os.ftruncate(fd, size)
            os.fsync(fd)
            if no_space(error):
                raise disk_full(self.path, error) from error
            raise

    def records(self) -> list[dict]:
        """Every readable result record, in order. A damaged line (a crash mid-write) or a line
        that is not a result record (see :data:`RECORD_SCHEMA`) is skipped with a warning naming
        the line, so one bad line never blocks the grid or the report."""
        if not self.path.exists():
            return []
        records = []
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    warnings.warn(f"{self.path}:{number}: skipping a damaged record", stacklevel=2)
                    continue
                problem = record_problem(record)
                if problem is None:
                    records.append(record)
                else:
                    # stacklevel 1: printed once per process, however many readers ask
                    warnings.warn(f"{self.path}:{number}: skipping a record that is not a result "
                                  f"record ({problem})", stacklevel=1)
        return records

    def done(self, key: tuple, records: list[dict] | None = None) -> dict | None:
        """The newest successful record with this key, or None. ``records``: the store's records
        if the caller already read them (a grid asks once per cell; records can be large)."""
        records = self.records() if records is None else records
        matches = [r for r in records if r["status"] == "ok" and cell_key(r) == key]
        return matches[-1] if matches else None

    def latest(self, records: list[dict] | None = None) -> list[dict]:
        """One record per cell (:func:`cell_key`: a configuration of a model and seed on a kind
        of device and precision), in the order the cells first appear: the newest successful
        one, as :meth:`done` (the run skips a cell on it, so the report shows it too), else the
        newest failure. A successful record that a later failure of its cell followed comes back
        as a copy with ``later_failures``: the errors of those failures, oldest first.
        ``records``: the store's records if the caller already read them."""
        cells: dict[tuple, list[dict]] = {}
        for record in self.records() if records is None else records:
            cells.setdefault(cell_key(record), []).append(record)
        return [_newest_standing(history) for history in cells.values()]


def _newest_standing(history: list[dict]) -> dict:
    """Of one cell's records (oldest first): the newest ``ok`` one, with the failures after it
    noted, else the newest."""
    ok = [i for i, r in enumerate(history) if r["status"] == "ok"]
    if not ok:
        return history[-1]
    record, later = history[ok[-1]], history[ok[-1] + 1:]
    if later:
        record = {**record, "later_failures": [r.get("error") or r["status"] for r in later]}
    return record
