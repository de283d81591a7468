"""The results store: an append-only JSON Lines file, one record per finished (or failed) cell."""
from __future__ import annotations

import fcntl
import json
import os
import warnings
from pathlib import Path

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
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
        with open(self.path, "a+", encoding="utf-8") as handle:  # a+: readable, for pread
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                # A crash mid-write can leave a last line without its newline: end it first, so
                # that only the damaged record is lost, never this one.
                size = os.fstat(handle.fileno()).st_size
                if size and os.pread(handle.fileno(), 1, size - 1) != b"\n":
                    line = "\n" + line
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

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
        """The newest record of each (mode, model, dataset, preset, seed), successful or not.
        ``records``: the store's records if the caller already read them."""
        newest: dict[tuple, dict] = {}
        for record in self.records() if records is None else records:
            newest[cell_key(record)[:5]] = record
        return list(newest.values())
