"""Reading trackers' local files back for the tests: TensorBoard's event files (its
EventAccumulator) and W&B's offline run files (``run-ID.wandb``: W&B's record log, LevelDB's
log format of 32 KiB blocks holding protobuf ``Record`` messages, read here with W&B's own
protobuf classes, as its removed ``wandb.sdk.internal.datastore`` read them)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7  # ":W&B", a 2-byte magic, a version byte; each record: crc32, length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def tensorboard(log_dir: Path):
    """The folder's events, every one kept (no sampling): an EventAccumulator, reloaded."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def scalar_steps(events, tag: str) -> list[int]:
    return [event.step for event in events.Scalars(tag)]


def wandb_records(path: Path) -> list:
    """The protobuf records of one offline run file, in order."""
    from wandb.proto import wandb_internal_pb2

    data, records, parts = Path(path).read_bytes(), [], b""
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    offset = HEADER
    while offset + HEADER <= len(data):
        left = BLOCK - offset % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            offset += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset:offset + HEADER])
        if kind == 0 and length == 0:
            offset += left  # zero padding to the block's end
            continue
        payload, offset = data[offset + HEADER:offset + HEADER + length], offset + HEADER + length
        parts = payload if kind in (FULL, FIRST) else parts + payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            records.append(record)
    return records


def wandb_history(path: Path) -> list[dict]:
    """The run file's history rows: ``{key: value}`` with ``_step``."""
    rows = []
    for record in wandb_records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def wandb_run(path: Path):
    """The run file's run record (id, name, config)."""
    runs = [r.run for r in wandb_records(path) if r.WhichOneof("record_type") == "run"]
    return runs[0]
