"""The optical_flow baseline (models/optical_flow.py, through pysteps) and optional packages in
the registry."""
import json

import numpy as np
import pytest
import torch

import models
from bench.cli.main import main

pytest.importorskip("pysteps", reason="optical_flow needs pysteps (the test extra installs it)")
pytest.importorskip("cv2", reason="pysteps' Lucas-Kanade needs OpenCV (the test extra installs it)")


def translating_blob(n_frames=20, size=48, step=(1.5, 1.0)):
    """A Gaussian blob moving ``step`` (dy, dx) pixels per frame: ``[1, T, 1, H, W]`` in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size]
    frames = [np.exp(-((yy - 12 - step[0] * t) ** 2 + (xx - 12 - step[1] * t) ** 2) / 32)
              for t in range(n_frames)]
    return torch.tensor(np.stack(frames), dtype=torch.float32)[None, :, None]


def frame_mse(pred, target):
    return float((pred - target).square().sum(dim=(2, 3, 4)).mean())


def test_it_beats_persistence_clearly_on_a_translating_blob():
    clip = translating_blob()
    past, future = clip[:, :10], clip[:, 10:]
    flow = models.create_model("optical_flow", height=48, width=48)(past, 10, 10).future
    still = models.create_model("persistence")(past, 10, 10).future
    ours, theirs = frame_mse(flow, future), frame_mse(still, future)
    assert ours < 0.01 * theirs, (ours, theirs)  # measured: 0.0011 against 66.0 (frame sums)
    assert flow.shape == future.shape and flow.dtype == future.dtype
    assert torch.isfinite(flow).all() and flow.min() >= 0 and flow.max() <= 1
    again = models.create_model("optical_flow", height=48, width=48)(past, 10, 10).future
    assert torch.equal(flow, again)  # deterministic


def test_a_still_frame_stays_still():
    clip = translating_blob(step=(0.0, 0.0))
    flow = models.create_model("optical_flow", height=48, width=48)(clip[:, :10], 10, 4).future
    assert frame_mse(flow, clip[:, 10:14]) < 1e-6


def test_it_has_no_parameters_and_refuses_other_than_one_channel():
    assert models.parameter_count("optical_flow") == 0
    with pytest.raises(ValueError, match="single-channel frames; got channels=3"):
        models.create_model("optical_flow", channels=3)
    with pytest.raises(ValueError, match="motion_frames must be an integer >= 2"):
        models.create_model("optical_flow", motion_frames=1)


def test_without_pysteps_it_is_listed_unavailable_and_refused_before_training(
        monkeypatch, tmp_path, capsys):
    real = models.registry.importlib.util.find_spec
    monkeypatch.setattr(models.registry.importlib.util, "find_spec",
                        lambda name, *a: None if name == "pysteps" else real(name, *a))
    assert "pip install pysteps opencv-python-headless" in models.unavailable("optical_flow")
    assert models.unavailable("persistence") is None
    assert main(["--list-models", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["optical_flow"]["available"] is False and rows["persistence"]["available"]
    assert "unavailable: needs pysteps" in rows["optical_flow"]["paper"]
    code = main(["--models", "optical_flow", "persistence", "--preset", "smoke",
                 "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "model 'optical_flow' needs pysteps: pip install pysteps" in err
    assert not (tmp_path / "out").exists()  # nothing ran
    assert main(["evaluate", "--models", "optical_flow", "--from-preset", "smoke", "--dataset",
                 "mmnist3", "--out", str(tmp_path / "out")]) == 2  # nor evaluates
    assert "model 'optical_flow' needs pysteps" in capsys.readouterr().err


def test_a_smoke_run_evaluates_it_like_persistence(tmp_path):
    out = tmp_path / "out"
    assert main(["--dataset", "blobs", "--preset", "smoke", "--models", "optical_flow",
                 "persistence", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--no-progress"]) == 0
    records = {json.loads(line)["model"]: json.loads(line)
               for line in (out / "blobs/smoke/records.jsonl").read_text().splitlines()}
    flow = records["optical_flow"]
    assert flow["status"] == "ok" and not (flow["train"] or {}).get("history")  # no training
    assert flow["cost"]["params"] == 0 and flow["cost"]["gmacs_fvcore"] is None
    assert "outside torch" in flow["cost"]["gmacs_not_counted"]
    assert flow["cost"]["infer_seq_s"] > 0
    assert flow["metrics"]["headline"]["mse"] < records["persistence"]["metrics"]["headline"]["mse"]
    assert "optical_flow" in (out / "blobs/smoke/summary.md").read_text()


def test_match_flops_runs_it_at_its_own_size_and_refuses_it_as_the_reference(tmp_path, capsys):
    """No FLOP counter sees its NumPy work: sized by FLOPs it is 'not counted', never 0, and as
    the reference of --match flops it is a clear error before any training."""
    from bench.cost.match import match_width, rollout_flops
    from bench.report.compute import matched_table

    assert rollout_flops("optical_flow", {"height": 32, "width": 32}, 10, 10) is None
    info = match_width("optical_flow", {"height": 32, "width": 32}, 1e6, "flops", 10, 10)
    assert not info["scalable"] and info["achieved"] is None
    assert "no FLOP counter sees its work" in info["note"]
    params = match_width("optical_flow", {}, 1e6, "params", 10, 10)
    assert params["achieved"] == 0.0 and "declares no width argument" in params["note"]
    record = {"model": "optical_flow", "status": "ok", "match": info, "seed": 0,
              "metrics": {"headline": {"mse": 1.0}}}
    row = matched_table([record]).iloc[0]
    assert row["achieved"] == "not counted" and row["vs target"] == ""
    code = main(["--models", "optical_flow", "convlstm", "--preset", "smoke", "--match",
                 "flops=optical_flow", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "'optical_flow' computes outside torch" in err, err
    assert "--match params=optical_flow" in err and not (tmp_path / "out").exists()
