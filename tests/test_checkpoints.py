"""--rerun trains from scratch; a damaged checkpoint or example file is moved aside or skipped
with a warning naming it, and the cell goes on from the previous good checkpoint or from
scratch, with the same result as an undisturbed run."""
import os
import random
import shutil
import zipfile

import pytest

from bench.store import ResultsStore

CELL_ARGS = ["--preset", "smoke", "--models", "convlstm", "--epochs", "1", "--steps", "2",
             "--no-progress"]


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """``run(*args) -> (exit code, stdout + stderr)``: the CLI in this process, profiling
    stubbed and no report (seconds each)."""
    import bench.grid.costs
    import bench.report
    from bench.cli.main import main

    monkeypatch.setattr(bench.grid.costs, "profile_model", lambda model, *a, **k: {"params": 1})
    monkeypatch.setattr(bench.report, "write_report", lambda folder, **options: (
        folder / "summary.md").write_text(""))

    def run_cli(*args):
        code = main([*CELL_ARGS, "--out", str(tmp_path / "out"),
                     "--cache-dir", str(tmp_path / "cache"), *args])
        said = capsys.readouterr()
        return code, said.out + said.err
    return run_cli


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "out" / "mmnist-embedded-32px" / "smoke"


def _cell(folder):
    [cell] = (folder / "checkpoints").glob("convlstm__seed0__*[0-9a-f]")
    return cell


def _forget_records(folder):
    """As if the run had been killed after training, before it recorded the cell."""
    (folder / "records.jsonl").unlink()


def test_rerun_trains_from_scratch_and_keeps_the_earlier_checkpoints(run, folder):
    assert run()[0] == 0
    code, said = run("--rerun")
    assert code == 0, said
    first, again = ResultsStore(folder).records()
    assert again["train"]["parts"] == 1 and again["train"]["resumed_from_step"] is None
    assert again["metrics"]["headline"]["mse"] == first["metrics"]["headline"]["mse"]
    [aside] = (folder / "checkpoints").glob("convlstm__seed0__*.replaced-*")
    assert (aside / "last.pt").exists() and f"earlier checkpoints are in {aside}" in said


def test_a_truncated_last_pt_is_moved_aside_and_the_cell_resumes_from_best_pt(run, folder):
    assert run()[0] == 0
    [first] = ResultsStore(folder).records()
    _forget_records(folder)
    last = _cell(folder) / "last.pt"
    os.truncate(last, last.stat().st_size // 2)
    stale = _cell(folder) / ".last.pt.k1ll3d.tmp"  # a writer killed mid-write left it
    stale.write_bytes(b"half")
    code, said = run()
    assert code == 0, said
    assert f"warning: {last} is damaged or not a checkpoint: PytorchStreamReader" in said
    [aside] = _cell(folder).glob("last.pt.damaged-*")
    assert not stale.exists()
    assert f"moved aside to {aside}" in said
    [record] = ResultsStore(folder).records()
    assert record["status"] == "ok" and record["train"]["parts"] == 2  # resumed from best.pt
    assert record["metrics"]["headline"]["mse"] == first["metrics"]["headline"]["mse"]


def test_a_random_best_pt_is_moved_aside_and_the_cell_trains_again(run, folder):
    assert run()[0] == 0
    [first] = ResultsStore(folder).records()
    _forget_records(folder)
    best = _cell(folder) / "best.pt"
    # fixed random bytes: about 1 file of os.urandom's in 40 starts with a pickle opcode and
    # fails another way (IndexError: pop from empty list), under another message
    best.write_bytes(random.Random(0).randbytes(4096))
    code, said = run()
    assert code == 0, said
    assert f"warning: {best} is damaged or not a checkpoint: it holds something other" in said
    assert "weights_only=False" not in said and "weights_only` set to `False" not in said
    assert "training again from scratch" in said
    assert list(_cell(folder).glob("best.pt.damaged-*"))
    [record] = ResultsStore(folder).records()
    assert record["status"] == "ok" and record["train"]["parts"] == 1
    assert record["metrics"]["headline"]["mse"] == first["metrics"]["headline"]["mse"]


def test_a_truncated_example_file_is_skipped_with_a_warning(run, folder):
    assert run()[0] == 0
    [npz] = (folder / "examples").glob("*.npz")
    shutil.copy(npz, npz.with_name("other__seed0.npz"))
    os.truncate(npz, npz.stat().st_size // 2)
    with pytest.raises(zipfile.BadZipFile):  # what every report and later run hit before
        zipfile.ZipFile(npz)
    from bench.report import read_examples
    with pytest.warns(UserWarning, match=f"{npz}: skipping damaged example clips"):
        assert read_examples(npz) is None
    assert set(read_examples(npz.with_name("other__seed0.npz"))) == {"input", "target",
                                                                      "prediction"}
