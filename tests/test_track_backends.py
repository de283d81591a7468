"""The trackers themselves, in their local modes, read back from their files: TensorBoard's
event files (EventAccumulator), W&B offline (its run files), MLflow's local store (MlflowClient).

One cell is run with every installed tracker, stopped (as by Ctrl-C) after its 4th iteration and
resumed by the same command: each tracker must hold one run of it, continued. Each test skips
cleanly when its tracker is not installed (``pip install '.[track]'``)."""
import importlib.util
import json
import signal

import pytest
import tracker_readback as readback

from bench.track.registry import TRACKERS
from bench.train.loop import Trainer

INSTALLED = [name for name, (_, package, _) in TRACKERS.items() if importlib.util.find_spec(package)]
pytestmark = pytest.mark.slow  # one cell run twice (tens of seconds), shared by the tests
CELL = ["--preset", "smoke", "--models", "convlstm", "--seeds", "0", "--no-progress"]  # 2 x 3 iterations


def stop_once_after_the_4th_iteration(patch):
    real = Trainer._stop_requested
    stopped = []

    def stop_once(self):
        if self.step == 3 and not stopped:
            stopped.append(self.step)
            self._stop.signum = signal.SIGINT
            return True
        return real(self)

    patch.setattr(Trainer, "_stop_requested", stop_once)


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """The resumed cell: its results folder, record, identity file and the parts' exit codes."""
    if not INSTALLED:
        pytest.skip("no tracker installed (pip install '.[track]')")
    import bench.grid.costs
    from bench.cli.main import main

    root = tmp_path_factory.mktemp("tracked")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.grid.costs, "profile_model", lambda model, *a, **k: {
            "params": sum(p.numel() for p in model.parameters())})
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("WANDB_DIR", str(root / "wandb-dir"))
        patch.setenv("WANDB_SILENT", "true")
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        stop_once_after_the_4th_iteration(patch)
        args = [*CELL, "--out", str(root / "results"), "--cache-dir", str(root / "cache"), "--log",
                *INSTALLED]
        codes = main(args), main(args)
    folder = next((root / "results").glob("*/smoke"))
    record = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()][-1]
    identity = json.loads(next(folder.glob("checkpoints/convlstm__seed0__*/tracking.json")).read_text())
    return {"root": root, "folder": folder, "record": record, "identity": identity, "codes": codes}


def test_the_cell_was_interrupted_resumed_and_recorded_once_with_its_run(cell):
    assert cell["codes"] == (130, 0)
    record, identity = cell["record"], cell["identity"]
    assert record["status"] == "ok" and record["train"]["parts"] == 2
    assert record["tracking"]["run_id"] == identity["run_id"]
    assert sorted(identity["backends"]) == sorted(INSTALLED)
    assert identity["name"] == f"convlstm__seed0__{record['dataset']}__smoke__{record['config_hash']}"


def test_tensorboard_holds_one_log_of_the_cell_every_step_once(cell):
    if "tensorboard" not in INSTALLED:
        pytest.skip("tensorboard not installed")
    folder, record, identity = cell["folder"], cell["record"], cell["identity"]
    logs = list((folder / "tensorboard").iterdir())
    assert len(logs) == 1 and str(logs[0]) == identity["backends"]["tensorboard"]["log_dir"]
    assert logs[0].name == f"{identity['name']}__{identity['run_id']}"
    assert len(list(logs[0].glob("events.out.tfevents.*"))) >= 2  # one file per part
    events = readback.tensorboard(logs[0])
    assert readback.scalar_steps(events, "train/loss") == [1, 2, 3, 4, 5, 6]  # each step once
    for tag in ("val/mse", "val/ssim", "train/loss_mean"):
        assert readback.scalar_steps(events, tag) == [3, 6], tag
    for tag in ("train/lr", "train/sampling_eta"):  # at each host read: validations, the checkpoint
        assert readback.scalar_steps(events, tag) == [3, 4, 6], tag
    assert "train/samples_per_s" in events.Tags()["scalars"]
    assert [e.value for e in events.Scalars("test/mse")] == \
        [pytest.approx(record["metrics"]["headline"]["mse"])]
    assert events.Scalars("cost/params")[0].value == record["cost"]["params"]
    assert sorted(events.Tags()["images"]) == ["test/clip_0", "test/clip_1", "val/clip_0", "val/clip_1"]
    image = events.Images("test/clip_0")[0]
    assert image.step == 6 and 0 < image.height < image.width
    hparams = events.PluginTagToContent("hparams")
    assert b"model.hidden" in hparams["_hparams_/session_start_info"]


def test_wandb_offline_holds_the_cell_in_two_parts_of_one_run_id(cell):
    if "wandb" not in INSTALLED:
        pytest.skip("wandb not installed")
    record, identity = cell["record"], cell["identity"]
    files = sorted((cell["root"] / "wandb-dir").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 2  # one per part, one run id: `wandb sync` appends them to one run
    runs = [readback.wandb_run(f) for f in files]
    assert {r.run_id for r in runs} == {identity["run_id"]} == {identity["backends"]["wandb"]["id"]}
    assert runs[0].display_name == identity["name"]
    config = {item.key: json.loads(item.value_json) for item in runs[0].config.update}
    assert config["model"] == "convlstm" and config["train.epochs"] == 2
    first, second = (readback.wandb_history(f) for f in files)
    steps = [[row["_step"] for row in rows if "train/loss" in row] for rows in (first, second)]
    assert steps == [[1, 2, 3, 4], [5, 6]]
    assert [row["_step"] for row in first + second if "val/mse" in row] == [3, 6]
    final = [row for row in second if "test/mse" in row]
    assert final[0]["test/mse"] == pytest.approx(record["metrics"]["headline"]["mse"])
    assert any(row.get("test/clip_0/_type") == "image-file" for row in second)


def test_mlflow_holds_one_run_of_the_cell_continued(cell):
    if "mlflow" not in INSTALLED:
        pytest.skip("mlflow not installed")
    from mlflow.tracking import MlflowClient

    folder, record, identity = cell["folder"], cell["record"], cell["identity"]
    mine = identity["backends"]["mlflow"]
    assert mine["tracking_uri"] == f"sqlite:///{(folder / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=mine["tracking_uri"])
    run = client.get_run(mine["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == identity["name"]
    assert run.data.params["model"] == "convlstm" and run.data.params["train.epochs"] == "2"
    assert run.data.tags["stbench.run_id"] == identity["run_id"]
    history = {tag: [m.step for m in client.get_metric_history(run.info.run_id, tag)]
               for tag in ("train/loss", "val/mse")}
    assert history == {"train/loss": [1, 2, 3, 4, 5, 6], "val/mse": [3, 6]}
    assert run.data.metrics["test/mse"] == pytest.approx(record["metrics"]["headline"]["mse"])
    assert len(client.search_runs([run.info.experiment_id])) == 1  # resumed: still one run
    assert any(a.path == "images" for a in client.list_artifacts(run.info.run_id))
    assert (folder / "mlartifacts").is_dir()


def test_mlflow_logs_to_a_file_store_named_by_its_tracking_uri(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from bench.track.base import RunInfo
    from bench.track.mlflow_log import create

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps it for opting in
    run = RunInfo("m__seed0", "abc", tmp_path, {"lr": 0.1}, {"dataset": "d", "preset": "p"})
    backend = create()
    identity = backend.start(run, None, 0)
    backend.log_hparams(run.params, [])
    backend.log_scalars({"train/loss": 0.5}, 1)
    backend.finish("killed")
    again = create()
    again.start(run, identity, 1)
    again.log_scalars({"train/loss": 0.25}, 2)
    again.finish("finished")
    client = MlflowClient(tracking_uri=uri)
    assert identity["tracking_uri"] == uri and (tmp_path / "mlruns").is_dir()
    assert [(m.step, m.value) for m in client.get_metric_history(identity["run_id"], "train/loss")] == \
        [(1, 0.5), (2, 0.25)]
    assert client.get_run(identity["run_id"]).info.status == "FINISHED"
