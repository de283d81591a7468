"""Atomic writes and a full disk: never half a file, never a stray temporary, one line naming
the file and the space left, the store rolled back, nothing recorded as failed."""
import contextlib
import errno

import pytest
from test_validation import MINIMAL_RECORD

from bench.runtime import files as atomic
from bench.runtime.files import DiskFullError, atomic_open
from bench.store import ResultsStore


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_keeps_the_old_file_removes_its_temporary_and_names_the_file(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"old")
    with pytest.raises(DiskFullError) as caught, atomic_open(path) as handle:
        handle.write(b"half")
        _no_space()
    message = str(caught.value)
    assert message.startswith(f"cannot write {path}: the disk is full (") and " free " in message
    assert "Errno" not in message
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_two_writers_of_one_file_never_share_a_temporary(tmp_path):
    path = tmp_path / "cost.json"
    with atomic_open(path, "w") as first, atomic_open(path, "w") as second:
        first.write("first")
        second.write("second")
    assert path.read_text() == "first"  # the last one moved into place wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["cost.json"]


def test_torch_wrapped_write_errors_count_as_a_full_disk():
    try:
        try:
            _no_space()
        except OSError as error:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from error
    except RuntimeError as wrapped:
        assert atomic.no_space(wrapped)
    assert not atomic.no_space(RuntimeError("something else"))


def test_a_failed_append_truncates_the_store_back(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)
    store.append({**MINIMAL_RECORD, "n": 1})
    before = store.path.read_bytes()
    real_write = atomic.os.write

    def half_then_full(fd, data):
        real_write(fd, data[: len(data) // 2])
        _no_space()

    monkeypatch.setattr("bench.store.os.write", half_then_full)
    with pytest.raises(DiskFullError, match=r"cannot write .*records\.jsonl: the disk is full"):
        store.append({**MINIMAL_RECORD, "n": 2, "padding": "x" * 1000})
    assert store.path.read_bytes() == before
    assert store.records() == [{**MINIMAL_RECORD, "n": 1}]


def test_a_full_disk_stops_the_run_with_one_line_and_records_nothing(tmp_path, monkeypatch,
                                                                     capsys):
    import bench.grid.costs
    import bench.train.checkpoint
    from bench.cli.main import main

    monkeypatch.setattr(bench.grid.costs, "profile_model", lambda model, *a, **k: {"params": 1})

    @contextlib.contextmanager
    def full(path, mode="wb", **options):
        raise atomic.disk_full(path, OSError(errno.ENOSPC, "No space left on device"))
        yield  # pragma: no cover

    monkeypatch.setattr(bench.train.checkpoint, "atomic_open", full)
    code = main(["--preset", "smoke", "--models", "convlstm", "--epochs", "1", "--steps", "2",
                 "--set", "checkpoint_every_steps=1", "--out", str(tmp_path / "out"),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    [line] = [line for line in err.splitlines() if line.strip()]
    assert line.startswith("error: cannot write ") and "last.pt: the disk is full" in line
    assert ResultsStore(tmp_path / "out" / "mmnist-embedded-32px" / "smoke").records() == []
