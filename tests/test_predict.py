"""Trained models you can use: ``bench.load_trained`` and ``run_bench.py predict``.

One smoke cell is trained into a temporary store (profiling and the report stubbed out); its
predictions must equal running its model on the normalised frames directly, in the data's
units, from every kind of input the command reads."""
import numpy as np
import pytest
import torch
from PIL import Image

import bench
import models
from bench.cli.main import main
from bench.predict import TrainedModel
from bench.predict.outputs import gif_frames

IN_LEN, SIZE = 4, 32  # the smoke preset's input frames and frame size


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    import bench.grid.costs
    import bench.report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench.grid.costs, "profile_model", lambda model, *a, **k: {
            "params": sum(p.numel() for p in model.parameters())})
        patch.setattr(bench.report, "write_report",
                      lambda folder, **options: (folder / "summary.md").write_text(""))
        assert main(["--models", "convlstm", "--preset", "smoke", "--out", str(root / "results"),
                     "--cache-dir", str(root / "cache"), "--no-progress", "--device", "cpu"]) == 0
    return root / "results"


@pytest.fixture(scope="module")
def trained(trained_root):
    return bench.load_trained(trained_root, "convlstm", seed=0, dataset="mmnist", preset="smoke")


def clips(n=3, t=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, t, 1, SIZE, SIZE), dtype=np.uint8)


def direct(trained, frames, n_future):
    """The model run by hand: the last IN_LEN frames / 255, clipped predictions * 255."""
    x = torch.from_numpy(frames[:, -IN_LEN:].astype(np.float32) / 255)
    with torch.no_grad():
        return (trained.model(x, IN_LEN, n_future).future.clamp(0, 1) * 255).numpy()


def test_predict_equals_running_the_model_directly(trained):
    frames = clips()
    predicted = trained.predict(frames, n_future=5)
    assert predicted.shape == (3, 5, 1, SIZE, SIZE) and predicted.dtype == np.float32
    np.testing.assert_allclose(predicted, direct(trained, frames, 5), rtol=0, atol=1e-4)
    one = trained.predict(frames[1])  # one sequence [T, C, H, W]; default: the trained out_len
    assert one.shape == (4, 1, SIZE, SIZE)
    np.testing.assert_allclose(one, direct(trained, frames[1:2], 4)[0], atol=1e-4)


def test_provenance_names_the_cell_and_its_checkpoint(trained, trained_root):
    import json

    (store,) = trained_root.rglob("records.jsonl")
    record = json.loads(store.read_text().splitlines()[-1])
    p = trained.provenance
    assert (p["model"], p["seed"], p["preset"]) == ("convlstm", 0, "smoke")
    assert p["config_hash"] == record["config_hash"] and p["git_commit"] == record["git_commit"]
    assert p["checkpoint"].endswith("best.pt") and p["epoch"] == record["train"]["best_epoch"]
    assert p["metrics"] == record["metrics"]["headline"] and len(p["checkpoint_sha256"]) == 64
    # the store folder itself works as well as the results root
    again = bench.load_trained(store.parent, "convlstm")
    assert again.provenance["checkpoint"] == p["checkpoint"]


@pytest.mark.parametrize("frames, message", [
    (np.zeros((2, 6, 1, 64, 64)), r"shape \(2, 6, 1, 64, 64\): convlstm takes .*C, H, W = 1, 32, 32"),
    (np.zeros((6, 3, SIZE, SIZE)), r"shape \(6, 3, 32, 32\): convlstm takes .*C, H, W = 1, 32, 32"),
    (np.zeros((2, 3, 1, SIZE, SIZE)), "hold 3 frames; convlstm needs at least 4"),
    (np.full((6, 1, SIZE, SIZE), 300.0), r"span \[300, 300\]; convlstm takes values in \[0, 255\]"),
    (np.full((6, 1, SIZE, SIZE), -1.0), r"takes values in \[0, 255\]"),
])
def test_bad_input_is_one_clear_error(trained, frames, message):
    with pytest.raises(ValueError, match=message):
        trained.predict(frames)


def test_clip_takes_values_outside_the_range(trained):
    frames = clips(1).astype(np.float32) * 2  # up to 510
    np.testing.assert_allclose(trained.predict(frames, 2, clip=True),
                               direct(trained, np.clip(frames, 0, 255), 2), atol=1e-4)
    with pytest.raises(ValueError, match="n_future must be an integer >= 1"):
        trained.predict(frames, 0)


def test_normalisation_round_trip_in_the_data_units():
    """A dataset's offset and scale: persistence's prediction is the last frame, unchanged."""
    model = models.create_model("persistence", channels=2, height=8, width=8)
    trained = TrainedModel(model=model, name="persistence", channels=2, height=8, width=8,
                           in_len=3, out_len=2, device=torch.device("cpu"), provenance={},
                           normalization={"offset": [10.0, -5.0], "scale": [5.0, 10.0]})
    frames = np.random.default_rng(1).random((2, 5, 2, 8, 8))
    frames[:, :, 0] = 10 + 5 * frames[:, :, 0]
    frames[:, :, 1] = -5 + 10 * frames[:, :, 1]
    predicted = trained.predict(frames, 3)
    np.testing.assert_allclose(predicted, np.repeat(frames[:, -1:], 3, axis=1), atol=1e-5)
    with pytest.raises(ValueError, match=r"takes values in \[10, -5, 15, 5\]"):
        trained.predict(frames + 20)


def test_a_missing_cell_names_the_command_that_trains_it(trained_root):
    with pytest.raises(ValueError, match="no finished training of convlstm seed 7.*train it with: "
                                         "python run_bench.py --models convlstm"):
        bench.load_trained(trained_root, "convlstm", seed=7, dataset="mmnist", preset="smoke")


# ------------------------------------------------------------------------------- the command
def predict_cli(trained_root, tmp_path, *args):
    return main(["predict", "--models", "convlstm", "--from-dataset", "mmnist", "--preset",
                 "smoke", "--out", str(trained_root), "--device", "cpu", *args])


def test_predict_command_reads_npy_and_writes_npy_and_gif(trained, trained_root, tmp_path, capsys):
    frames = clips(2, 5)
    np.save(tmp_path / "in.npy", frames)
    code = predict_cli(trained_root, tmp_path, "--input", str(tmp_path / "in.npy"), "--output",
                       str(tmp_path / "out.npy"), "--n-future", "6", "--gif")
    assert code == 0, capsys.readouterr().err
    out = np.load(tmp_path / "out.npy")
    assert out.shape == (2, 6, 1, SIZE, SIZE)
    np.testing.assert_allclose(out, direct(trained, frames, 6), atol=1e-4)
    gif = Image.open(tmp_path / "out.gif")
    assert gif.n_frames == 5 + 6  # the input frames, then the predicted ones (none merged)
    assert "shape (2, 6, 1, 32, 32)" in capsys.readouterr().out


def test_predict_command_reads_npz_h5_layouts_images_and_video(trained, trained_root, tmp_path):
    import h5py
    import imageio_ffmpeg

    frames = clips(1, 5)
    expected = direct(trained, frames, 4)[0]
    np.savez(tmp_path / "in.npz", other=np.zeros(3), frames=frames[0].transpose(0, 2, 3, 1))
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["clips"] = frames
    (tmp_path / "images").mkdir()
    for t, frame in enumerate(frames[0]):
        Image.fromarray(frame[0]).save(tmp_path / "images" / f"frame{t:02d}.png")
    inputs = {"in.npz": ["--key", "frames", "--layout", "THWC"], "in.h5": [], "images": []}
    for name, extra in inputs.items():
        out = tmp_path / f"{name}.npy"
        assert predict_cli(trained_root, tmp_path, "--input", str(tmp_path / name), "--output",
                           str(out), *extra) == 0, name
        got = np.load(out)
        np.testing.assert_allclose(got[0] if name == "in.h5" else got, expected, atol=1e-4,
                                   err_msg=name)
    writer = imageio_ffmpeg.write_frames(str(tmp_path / "in.mp4"), (SIZE, SIZE), pix_fmt_in="gray",
                                         codec="libx264", macro_block_size=1)
    writer.send(None)
    for frame in frames[0]:
        writer.send(np.ascontiguousarray(frame[0]))
    writer.close()
    assert predict_cli(trained_root, tmp_path, "--input", str(tmp_path / "in.mp4"), "--output",
                       str(tmp_path / "video.npy")) == 0
    assert np.load(tmp_path / "video.npy").shape == (4, 1, SIZE, SIZE)  # lossy codec: shape only


@pytest.mark.parametrize("args, message", [
    (["--input", "missing.npy", "--output", "o.npy"], "--input 'missing.npy' not found"),
    (["--input", "x.txt", "--output", "o.npy"], "accepted inputs are .npy, .npz, .h5"),
    (["--input", "in.npy", "--output", "o.png"], "predictions are written as .npy"),
    (["--input", "in.npy", "--output", "o.npy", "--seeds", "0", "1"], "one model and one seed"),
])
def test_predict_command_bad_arguments(trained_root, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    np.save("in.npy", clips(1))
    (tmp_path / "x.txt").write_text("")
    assert predict_cli(trained_root, tmp_path, *args) == 2
    assert message in capsys.readouterr().err


def test_gif_marks_the_predicted_frames_and_no_two_pictures_are_the_same():
    inputs, predicted = np.zeros((1, 2, 1, 4, 4)), np.full((1, 3, 1, 4, 4), 255.0)
    pictures = gif_frames(inputs, predicted, np.zeros((1, 1, 1)), np.full((1, 1, 1), 255.0))
    assert len(pictures) == 5 and pictures[0].shape == (128 + 3, 128, 3)
    assert pictures[0][:128].max() == 0 and pictures[2][:128].min() == 255
    bars = [p[128:, :, 0] for p in pictures]  # grows by a fifth each step; white once predicting
    assert [int((b[0] > 0).sum()) for b in bars] == [26, 52, 77, 103, 128]
    assert bars[1].max() == 96 and bars[2][:, :77].min() == 255 and bars[2][:, 77:].max() == 0


def test_readme_python_example_runs_as_written(trained_root, tmp_path, monkeypatch):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Using a trained model", 1)[1].split("\n### ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").symlink_to(trained_root)
    np.save("clips.npy", clips(2, 6))
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    assert namespace["future"].shape == (2, 10, 1, SIZE, SIZE)
