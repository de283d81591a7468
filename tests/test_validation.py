"""Bad values, names, records and files are caught early, with one clear line naming them."""
import json
import warnings

import numpy as np
import pytest

import bench.grid.runner
from bench.cli.main import main
from bench.store import ResultsStore, one_line, record_problem

SMOKE = "mmnist-embedded-32px/smoke"
# The smallest line the store takes as a result record (docs/records.md, "Required").
MINIMAL_RECORD = {"mode": "train", "model": "persistence", "dataset": "toy", "preset": "smoke",
                  "seed": 0, "config_hash": "abc", "status": "ok", "device_name": "test CPU"}


# ------------------------------------------------------------------ records of the wrong shape
WRONG_SHAPES = ['{"hello": 1}', "null", "42", "[1, 2, 3]", '"text"',
                '{"mode": "train", "model": "convlstm"}',
                json.dumps({**MINIMAL_RECORD, "seed": "zero"}),
                json.dumps({**MINIMAL_RECORD, "metrics": [1, 2]})]


@pytest.mark.parametrize("line", WRONG_SHAPES)
def test_a_record_of_the_wrong_shape_is_skipped_with_a_warning(tmp_path, line):
    store = ResultsStore(tmp_path)
    store.append(MINIMAL_RECORD)
    with open(store.path, "a") as handle:
        handle.write(line + "\n")
    store.append({**MINIMAL_RECORD, "seed": 1})
    with pytest.warns(UserWarning, match=r"records.jsonl:2: skipping a record that is not a "
                                         r"result record \(.+\)"):
        assert [r["seed"] for r in store.records()] == [0, 1]


def test_record_problem_names_what_is_wrong():
    assert record_problem(MINIMAL_RECORD) is None
    assert record_problem({**MINIMAL_RECORD, "error": None, "metrics": None}) is None
    assert record_problem({"hello": 1}).startswith("missing 'mode', 'model'")
    assert record_problem(42) == "a JSON int, not an object"
    assert record_problem({**MINIMAL_RECORD, "seed": True}) == "'seed' is true, not an integer"


def test_a_wrong_record_blocks_neither_the_grid_nor_the_report(run, tmp_path, capsys):
    assert run("--models", "persistence") == 0
    store = ResultsStore(tmp_path / "results" / SMOKE)
    with open(store.path, "a") as handle:
        handle.write('{"hello": 1}\n{"mode": "train", "model": "convlstm"}\n')
    with pytest.warns(UserWarning, match="not a result record"):
        assert run("--models", "persistence", "--seeds", "1") == 0
    assert "Traceback" not in capsys.readouterr().err
    with pytest.warns(UserWarning, match="not a result record"):
        assert main(["report", "--out", str(tmp_path / "results")]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sorted(r["seed"] for r in store.records()) == [0, 1]


def test_one_line_folds_a_multi_line_error():
    assert one_line("ValueError: first\n  second\n\nthird") == "ValueError: first; second; third"
    assert one_line("plain") == "plain"


# ------------------------------------------------------------------ non-finite and bad values
NON_FINITE = {
    "lr=1e400": "--set lr=Infinity: inf is not a finite number",
    "lr=NaN": "--set lr=NaN: nan is not a finite number",
    "lr=Infinity": "--set lr=Infinity: inf is not a finite number",
    "min_lr=NaN": "--set min_lr=NaN: nan",
    "grad_clip=NaN": "--set grad_clip=NaN: nan",
    "betas=[NaN,0.9]": "--set betas=[NaN, 0.9]: nan",
    "checkpoint_every_seconds=NaN": "--set checkpoint_every_seconds=NaN: nan",
}


@pytest.mark.parametrize("override", sorted(NON_FINITE))
def test_non_finite_options_are_refused_up_front(run, capsys, override, monkeypatch):
    monkeypatch.setattr(bench.grid.runner, "run_grid", lambda *a, **k: pytest.fail("ran the grid"))
    assert run("--models", "persistence", "--set", override) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and NON_FINITE[override] in err, err
    assert "accepted: finite numbers" in err and err.count("\n") == 1


def test_a_non_finite_model_argument_is_refused(run, capsys):
    assert run("--models", "convlstm", "--model-arg", "hidden=NaN") == 2
    assert "--model-arg hidden=NaN: nan is not a finite number" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_seed_numpy_cannot_take_is_refused_before_any_work(run, capsys, seed, monkeypatch):
    monkeypatch.setattr(bench.grid.runner, "run_grid", lambda *a, **k: pytest.fail("ran the grid"))
    assert run("--models", "persistence", "--seeds", "0", seed) == 2
    assert f"error: --seeds {seed}: accepted: integers from 0 to 4294967295" in \
        capsys.readouterr().err


# ------------------------------------------------------------------ dataset names
def _dataset_toml(tmp_path, name: str):
    np.save(tmp_path / "d.npy", np.random.default_rng(0).random((4, 30, 1, 8, 8), np.float32))
    path = tmp_path / "d.toml"
    path.write_text(f'name = {json.dumps(name)}\npath = "d.npy"\nin_len = 2\nout_len = 2\n')
    return str(path)


@pytest.mark.parametrize("name", ["..", ".", "a" * 300, "a\0b", "x/../y", "-x"])
def test_a_dataset_name_never_leads_outside_the_output(run, tmp_path, capsys, name):
    assert run("--models", "persistence", "--dataset-config", _dataset_toml(tmp_path, name)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset name ") and "cannot be used in a file name" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "smoke").exists() and not (tmp_path / "results").exists()


def test_a_good_dataset_name_still_names_the_folder(run, tmp_path):
    assert run("--models", "persistence", "--dataset-config", _dataset_toml(tmp_path, "toy.v2")) == 0
    assert (tmp_path / "results" / "toy.v2" / "smoke" / "records.jsonl").is_file()


def test_a_multi_line_error_keeps_its_markdown_table_row(tmp_path):
    from test_report import record

    from bench.report import write_report
    store = ResultsStore(tmp_path)
    store.append(record("modernn", 0, 10.0))
    store.append(record("broken", 0, 0.0, status="failed", error="RuntimeError: a\nb\n  c"))
    write_report(tmp_path)
    rows = [line for line in (tmp_path / "summary.md").read_text().splitlines()[:12]
            if "broken" in line or line.strip() in ("b", "c")]
    assert len(rows) == 1 and "failed: RuntimeError: a; b; c" in rows[0], rows
    assert store.records()[1]["error"] == "RuntimeError: a\nb\n  c"  # the record keeps it all


# ------------------------------------------------------------------ folders the run writes
def test_an_output_under_proc_is_refused_before_any_work(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench.grid.runner, "run_grid", lambda *a, **k: pytest.fail("ran the grid"))
    assert main(["--preset", "smoke", "--models", "persistence", "--out", "/proc/stbench"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output folder '/proc/stbench' cannot be written (a new file "
                          "in /proc fails") and err.count("\n") == 1, err


@pytest.mark.parametrize("part", ["cost_cache", "examples", "checkpoints"])
def test_a_run_folder_that_cannot_be_written_is_refused_before_profiling(run, tmp_path, capsys,
                                                                          monkeypatch, part):
    monkeypatch.setattr(bench.grid.runner, "run_grid", lambda *a, **k: pytest.fail("ran the grid"))
    store = tmp_path / "results" / SMOKE
    store.mkdir(parents=True)
    (store / part).write_text("not a folder")  # as root, permission bits cannot stop a write
    assert run("--models", "persistence") == 2
    err = capsys.readouterr().err
    assert err == f"error: output folder '{store / part}' cannot be written ({store / part} is " \
                  "not a folder)\n"


def test_a_cost_cache_that_cannot_be_written_is_a_warning(run, tmp_path, capsys, monkeypatch):
    def refuse(path, content):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(bench.grid.runner, "_write_json", refuse)
    assert run("--models", "persistence") == 0
    out = capsys.readouterr().out
    assert "warning: cost of persistence not cached (" in out and "Read-only file system" in out
    assert ResultsStore(tmp_path / "results" / SMOKE).records()[0]["status"] == "ok"


# ------------------------------------------------------------------ HDF5 never written, constant
def _h5(path, **datasets):
    import h5py
    with h5py.File(path, "w") as f:
        for key, make in datasets.items():
            make(f, key)
    return path


@pytest.mark.parametrize("layout", ["chunked", "contiguous", "group member"])
def test_an_hdf5_file_declaring_a_huge_never_written_shape_fails_fast(tmp_path, layout):
    import resource
    import time

    from datasets import DatasetFileError, SequenceFileConfig, load_sequence_dataset
    shape = (10**6, 20, 1, 64, 64)  # 82 GB declared; the file is a few KB
    if layout == "chunked":
        path = _h5(tmp_path / "huge.h5", frames=lambda f, k: f.create_dataset(
            k, shape=shape, dtype=np.uint8, chunks=(1, 20, 1, 64, 64)))
    elif layout == "contiguous":
        path = _h5(tmp_path / "huge.h5", frames=lambda f, k: f.create_dataset(
            k, shape=shape[1:], dtype=np.float32))
    else:
        path = _h5(tmp_path / "huge.h5", frames=lambda f, k: [
            f.create_dataset(f"{k}/s0", data=np.ones((20, 1, 8, 8), np.float32)),
            f.create_dataset(f"{k}/s1", shape=(20, 1, 8, 8), dtype=np.float32)])
    assert path.stat().st_size < 100_000
    before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(DatasetFileError, match=r"huge.h5: dataset '(frames|frames/s1)' declares "
                                               r"shape .* but none of its data was ever written"):
        load_sequence_dataset(SequenceFileConfig(name="huge", path=str(path), key="frames",
                                                 in_len=10, out_len=10))
    assert time.perf_counter() - started < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB


def test_constant_data_under_a_fixed_range_is_a_warning(tmp_path):
    from datasets import SequenceFileConfig, load_sequence_dataset
    np.save(tmp_path / "zeros.npy", np.zeros((6, 20, 1, 8, 8), np.uint8))
    with pytest.warns(UserWarning, match="dataset 'zeros': every value read from 4 training "
                                         "sequences is 0: is the data constant"):
        load_sequence_dataset(SequenceFileConfig(name="zeros", path=str(tmp_path / "zeros.npy"),
                                                 in_len=3, out_len=2))
    varied = np.zeros((6, 20, 1, 8, 8), np.uint8)
    varied[:, 0, 0, 0, 0] = 9  # one pixel of each first frame differs
    np.save(tmp_path / "varied.npy", varied)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_sequence_dataset(SequenceFileConfig(name="varied", path=str(tmp_path / "varied.npy"),
                                                 in_len=3, out_len=2))


def test_statistics_are_streamed_into_one_cached_result_per_scan(tmp_path):
    from datasets import SequenceFileConfig, load_sequence_dataset
    from datasets.files import normalization as file_normalization
    frames = np.random.default_rng(1).random((300, 6, 2, 4, 4)).astype(np.float32) * 7 - 3
    np.save(tmp_path / "many.npy", frames)
    file_normalization._STATS_CACHE.clear()
    data = load_sequence_dataset(SequenceFileConfig(
        name="many", path=str(tmp_path / "many.npy"), in_len=3, out_len=2,
        normalize={"mode": "minmax", "per_channel": True}))
    assert len(file_normalization._STATS_CACHE) == 3  # train, val, test: not one per sequence
    train = sorted(set(range(300)) - {int(s) for s, _ in data.val.windows}
                   - {int(s) for s, _ in data.test.windows})
    norm = data.details["normalization"]
    expected = frames[train].min(axis=(0, 1, 3, 4))
    assert norm["offset"] == pytest.approx(expected.astype(float).tolist(), abs=0)


# ------------------------------------------------------------------ damaged .npy files
def _npy(tmp_path, name, array=None, cut=None, raw=None):
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
        return path
    np.save(path, array, allow_pickle=array.dtype.hasobject)
    if cut is not None:
        path.write_bytes(path.read_bytes()[:cut])
    return path


DAMAGED_NPY = {
    "truncated": (dict(array=np.zeros((4, 30, 1, 8, 8), np.float32), cut=5000),
                  "not a valid .npy array: damaged or incomplete (5000 bytes, expected 30848 for "
                  "float32 (4, 30, 1, 8, 8) after a 128-byte header)"),
    "random bytes": (dict(raw=bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8))),
                     "not a .npy file, or damaged: it does not begin with the .npy signature "
                     "(5000 bytes)"),
    "objects": (dict(array=np.array([{}], dtype=object)),
                "it holds Python objects, which are never unpickled"),
    "header": (dict(raw=b"\x93NUMPY garbage"), "damaged header (14 bytes)"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_NPY))
def test_a_damaged_npy_file_is_named_and_never_points_at_pickle(tmp_path, case):
    from datasets import DatasetFileError
    from datasets.core.npy import open_npy
    options, expected = DAMAGED_NPY[case]
    path = _npy(tmp_path, "x.npy", **options)
    with pytest.raises(DatasetFileError) as caught:
        open_npy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message, message
    assert "allow_pickle" not in message and "mmap length" not in message


def test_a_truncated_mnist_test_seq_says_damaged_or_incomplete(run, tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    _npy(root, "mnist_test_seq.npy", np.zeros((20, 8, 64, 64), np.uint8), cut=5000)
    assert run("--models", "persistence", "--data-root", str(root)) == 2
    err = capsys.readouterr().err
    assert "mnist_test_seq.npy: not a valid .npy array: damaged or incomplete (5000 bytes, " \
           "expected 655488" in err and err.count("\n") == 1, err


def test_a_truncated_npz_member_says_damaged_or_incomplete(tmp_path):
    from datasets import DatasetFileError
    from datasets.core.npy import npz_memmap as _npz_memmap
    path = tmp_path / "x.npz"
    np.savez(path, frames=np.zeros((4, 30, 1, 8, 8), np.float32))
    data = bytearray(path.read_bytes())
    import zipfile
    with zipfile.ZipFile(path) as z:  # declare a larger array in the member's header
        start = z.getinfo("frames.npy").header_offset
    at = data.index(b"(4, 30,", start)
    data[at:at + 7] = b"(9, 30,"
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetFileError, match=r"x.npz: member 'frames' is damaged or incomplete"):
        _npz_memmap(path, "frames")


# ------------------------------------------------------------------ smaller items
def test_a_cpu_allocation_failure_is_labelled_out_of_memory(run, tmp_path, temporary_model):
    import torch

    from bench.runtime.memory import is_out_of_memory
    from models import Prediction

    class Huge(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, frames, *args, **kwargs):
            torch.empty(10**13)  # 40 TB: the CPU allocator refuses at once
            return Prediction(frames[:, -2:], {})
    try:
        torch.empty(10**13)
    except RuntimeError as error:
        assert "DefaultCPUAllocator: can't allocate memory" in str(error)
        assert is_out_of_memory(error)
    name = temporary_model("huge_cpu", Huge)
    run("--models", name)
    (record,) = ResultsStore(tmp_path / "results" / SMOKE).records()
    assert record["status"] == "failed"
    assert record["error"].startswith("out of memory: RuntimeError: "), record["error"]


def test_a_dataset_cache_deleted_mid_run_is_still_read(tmp_path):
    from bench.config import get_preset
    from bench.grid.runner import load_data
    data = load_data(get_preset("smoke").data, None, str(tmp_path / "cache"))
    removed = list((tmp_path / "cache").glob("*.h5"))
    assert len(removed) == 2
    for path in removed:  # before any clip was read (the val set: first used by a later cell)
        path.unlink()
    again = load_data(get_preset("smoke").data, None, str(tmp_path / "cache2"))
    assert (data.val[0] == again.val[0]).all() and (data.test[-1] == again.test[-1]).all()


def test_temporary_files_of_a_killed_cache_writer_are_removed(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import time

    from bench.runtime.files import STALE_TEMP_S
    from datasets.core.eval_cache import cached_clips
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    path = tmp_path / "clips.h5"
    killed = tmp_path / f".clips.h5.{host}-{dead.pid}.abc123.tmp"  # its writer no longer runs
    running = tmp_path / f".clips.h5.{host}-{os.getpid()}.def456.tmp"  # a writer at work
    other_host = tmp_path / ".clips.h5.elsewhere-1.ghi789.tmp"  # cannot tell: kept while fresh
    old = tmp_path / ".clips.h5.x9Yz_ab.tmp"  # from before writers were named: only when old
    other_cache = tmp_path / f".other.h5.{host}-{dead.pid}.jkl012.tmp"
    for tmp in (killed, running, other_host, old, other_cache):
        tmp.write_bytes(b"partial")
    stale = time.time() - STALE_TEMP_S - 60
    os.utime(old, (stale, stale))
    shape = (2, 3, 1, 4, 4)
    cached_clips(path, shape, lambda a, b: np.zeros((b - a, *shape[1:]), np.uint8), {"v": 1})
    assert path.is_file()
    assert not killed.exists() and not old.exists()
    assert running.exists() and other_host.exists() and other_cache.exists()
    assert sorted(p.name for p in tmp_path.glob(".clips.h5.*.tmp")) == sorted(
        [running.name, other_host.name])  # the writer's own temporary file is gone
