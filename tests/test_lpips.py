"""LPIPS (AlexNet v0.1, as OpenSTL reports it), with weights the tests build, never downloaded:
the network against its definition (and against the lpips package where it is installed), the
per-frame hook in evaluation, the reasons recorded when it cannot be computed, and --lpips
through the CLI and the report."""
import json
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.cli.main import main
from bench.evaluation import lpips as lpips_metric
from bench.evaluation.loop import evaluate
from bench.evaluation.lpips import AlexLPIPS, load, lpips_per_frame, metric
from models.persistence import Persistence


def random_weights(seed: int = 0) -> tuple[dict, dict]:
    """State dicts shaped like torchvision's AlexNet checkpoint (features and classifier) and
    lpips' v0.1 linear layers (non-negative, as lpips trains them)."""
    g = torch.Generator().manual_seed(seed)
    backbone = {}
    for index, c_in, c_out, k, _, _ in lpips_metric.CONVS:
        backbone[f"features.{index}.weight"] = torch.randn(c_out, c_in, k, k, generator=g) * (
            2 / (c_in * k * k)) ** 0.5
        backbone[f"features.{index}.bias"] = torch.randn(c_out, generator=g) * 0.1
    backbone["classifier.1.weight"] = torch.randn(8, 8, generator=g)  # ignored, as lpips does
    linear = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g)
              for k, c in enumerate(lpips_metric.CHANNELS)}
    return backbone, linear


def reference_lpips(x0, x1, backbone, linear):
    """LPIPS v0.1 written out step by step from its definition (lpips.LPIPS.forward)."""
    shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
    scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)

    def relus(x):
        x = (x - shift) / scale
        outs = []
        x = F.relu(F.conv2d(x, backbone["features.0.weight"], backbone["features.0.bias"],
                            stride=4, padding=2))
        outs.append(x)
        x = F.relu(F.conv2d(F.max_pool2d(x, 3, 2), backbone["features.3.weight"],
                            backbone["features.3.bias"], padding=2))
        outs.append(x)
        x = F.relu(F.conv2d(F.max_pool2d(x, 3, 2), backbone["features.6.weight"],
                            backbone["features.6.bias"], padding=1))
        outs.append(x)
        for index in (8, 10):
            x = F.relu(F.conv2d(x, backbone[f"features.{index}.weight"],
                                backbone[f"features.{index}.bias"], padding=1))
            outs.append(x)
        return outs

    total = torch.zeros(len(x0))
    for k, (a, b) in enumerate(zip(relus(x0), relus(x1), strict=True)):
        a = a / (torch.sqrt((a * a).sum(1, keepdim=True)) + 1e-10)
        b = b / (torch.sqrt((b * b).sum(1, keepdim=True)) + 1e-10)
        d = F.conv2d((a - b) ** 2, linear[f"lin{k}.model.1.weight"])
        total += d.mean(dim=(1, 2, 3))
    return total


# ------------------------------------------------------------------------------ the network
def test_alexnet_lpips_follows_its_definition():
    backbone, linear = random_weights()
    network = AlexLPIPS(backbone, linear)
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.rand(3, 3, 64, 48, generator=g) * 2 - 1, torch.rand(3, 3, 64, 48, generator=g) * 2 - 1
    d = network(x0, x1)
    assert d.shape == (3,)
    torch.testing.assert_close(d, reference_lpips(x0, x1, backbone, linear), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(network(x1, x0), d)  # symmetric
    assert (d > 0).all() and network(x0, x0).abs().max() < 1e-6  # zero only for the same image


def test_frames_are_clipped_scaled_to_minus_one_one_and_grayscale_repeated():
    seen = []

    class Recorder(nn.Module):
        def forward(self, a, b):
            seen.append((a.clone(), b.clone()))
            return (a - b).abs().mean(dim=(1, 2, 3))

    pred = torch.tensor([0.0, 0.5, 1.5]).view(1, 3, 1, 1, 1).expand(1, 3, 1, 4, 4)  # [B, T, C...]
    target = torch.full((1, 3, 1, 4, 4), 0.25)
    out = lpips_per_frame(pred, target, Recorder())
    a, b = seen[0]
    assert a.shape == (3, 3, 4, 4)  # B * T images, one channel repeated to three
    assert torch.equal(a[:, 0], a[:, 1]) and torch.equal(a[:, 1], a[:, 2])
    assert a[:, 0, 0, 0].tolist() == [-1.0, 0.0, 1.0]  # 2x - 1, the prediction clipped to 1
    assert b.unique().tolist() == [-0.5]
    assert out.shape == (1, 3) and out.dtype == torch.float64
    assert out[0].tolist() == pytest.approx([0.5, 0.5, 1.5])
    # three channels pass as they are; the result does not depend on the chunk size
    rgb = torch.rand(2, 5, 3, 8, 8)
    chunked = lpips_per_frame(rgb, rgb.flip(1), Recorder(), chunk=3)
    torch.testing.assert_close(chunked, lpips_per_frame(rgb, rgb.flip(1), Recorder()))
    with pytest.raises(ValueError, match="1 \\(grayscale\\) or 3 \\(RGB\\) channels, not 2"):
        lpips_per_frame(torch.rand(1, 2, 2, 8, 8), torch.rand(1, 2, 2, 8, 8), Recorder())


def test_evaluation_adds_the_hook_per_frame_and_to_the_headline():
    backbone, linear = random_weights()
    network = AlexLPIPS(backbone, linear)
    clips = torch.rand(5, 6, 1, 32, 32)  # 3 in, 3 out
    result = evaluate(Persistence(), clips, 3, 3, torch.device("cpu"), batch_size=2,
                      extra_metrics={"lpips": metric(network)})
    expected = lpips_per_frame(clips[:, 2:3].expand(5, 3, 1, 32, 32), clips[:, 3:], network)
    assert result["per_frame"]["lpips"] == pytest.approx(expected.mean(dim=0).tolist(), rel=1e-6)
    assert result["headline"]["lpips"] == pytest.approx(expected.mean().item(), rel=1e-6)
    assert set(result["per_frame"]) == {"mse", "mse_per_pixel", "mae", "psnr", "ssim", "lpips"}
    plain = evaluate(Persistence(), clips, 3, 3, torch.device("cpu"), batch_size=2)
    assert "lpips" not in plain["headline"]


def stand_in_torchvision(monkeypatch, backbone) -> None:
    """A torchvision whose ``models.alexnet`` is AlexNet's features with ``backbone()``'s weights,
    in place of the real one (which does not load beside a CPU torch), and lpips imported anew."""
    def alexnet(pretrained=False, **_):
        layers, weights = [], backbone()
        for index, c_in, c_out, k, s, p in lpips_metric.CONVS:
            if index in (3, 6):
                layers.append(nn.MaxPool2d(3, 2))
            conv = nn.Conv2d(c_in, c_out, k, stride=s, padding=p)
            conv.weight.data.copy_(weights[f"features.{index}.weight"])
            conv.bias.data.copy_(weights[f"features.{index}.bias"])
            layers += [conv, nn.ReLU(inplace=True)]
        layers.append(nn.MaxPool2d(3, 2))
        return types.SimpleNamespace(features=nn.Sequential(*layers))

    stand_in = types.ModuleType("torchvision")
    stand_in.models = types.SimpleNamespace(alexnet=alexnet)
    monkeypatch.setitem(sys.modules, "torchvision", stand_in)
    forget_lpips(monkeypatch)


def forget_lpips(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
        monkeypatch.delitem(sys.modules, name)


def test_same_numbers_as_the_lpips_package_where_it_is_installed(monkeypatch):
    """lpips imports torchvision, whose PyPI wheels do not load beside a CPU torch: a stand-in
    torchvision hands lpips an AlexNet with the test's weights, and everything else (scaling,
    normalisation, its shipped linear weights, the sum over layers) is the package's own."""
    linear_path = lpips_metric.linear_weights_path()
    if linear_path is None:
        pytest.skip("the lpips package is not installed (optional: pip install --no-deps lpips)")
    backbone, _ = random_weights(2)
    stand_in_torchvision(monkeypatch, lambda: backbone)
    import lpips

    theirs = lpips.LPIPS(net="alex", version="0.1", verbose=False)  # their linear weights
    ours = AlexLPIPS(backbone, torch.load(linear_path, map_location="cpu"))
    frames = torch.rand(2, 4, 1, 64, 64)
    target = frames.roll(1, dims=1)
    with torch.no_grad():  # OpenSTL: lpips.im2tensor(x * 255) of a H x W x 1 frame, [-1, 1]
        expected = torch.stack([theirs(frames[b, t][None] * 2 - 1, target[b, t][None] * 2 - 1)
                                .flatten() for b in range(2) for t in range(4)]).view(2, 4)
    torch.testing.assert_close(lpips_per_frame(frames, target, ours), expected.double(),
                               rtol=1e-5, atol=1e-6)
    for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
        del sys.modules[name]


def test_where_the_lpips_package_imports_it_computes_lpips_and_agrees_with_the_own_network(
        tmp_path, monkeypatch):
    """load() takes the package's network where ``import lpips`` works; with the same weights
    (AlexNet's checkpoint from the hub cache, the package's linear layers) the own network gives
    the same distances. A real torchvision where one loads, else the stand-in."""
    linear_path = lpips_metric.linear_weights_path()
    if linear_path is None:
        pytest.skip("the lpips package is not installed (optional: pip install --no-deps lpips)")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    backbone, _ = random_weights(3)
    checkpoint = lpips_metric.alexnet_path()
    checkpoint.parent.mkdir(parents=True)
    torch.save(backbone, checkpoint)  # torchvision reads a cached checkpoint by its file name
    try:
        import torchvision  # noqa: F401
        forget_lpips(monkeypatch)
    except Exception:  # the PyPI wheel beside a CPU torch: "operator torchvision::nms does not exist"
        stand_in_torchvision(monkeypatch, lambda: torch.load(checkpoint))
    network, note = load(1, 64, 64)
    assert isinstance(network, lpips_metric.PackageLPIPS), note
    assert note["implementation"].startswith("the lpips package (lpips ")
    ours = AlexLPIPS(backbone, torch.load(linear_path, map_location="cpu"))
    frames = torch.rand(2, 3, 1, 64, 64)
    target = frames.roll(1, dims=1)
    torch.testing.assert_close(lpips_per_frame(frames, target, network),
                               lpips_per_frame(frames, target, ours), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ weights
@pytest.fixture
def weights(tmp_path, monkeypatch):
    """A torch hub cache in tmp_path with a test-built AlexNet checkpoint, and lpips' linear
    weights file (test-built too) found where the installed package would keep it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    backbone, linear = random_weights()
    checkpoint = lpips_metric.alexnet_path()
    checkpoint.parent.mkdir(parents=True)
    torch.save(backbone, checkpoint)
    torch.save(linear, tmp_path / "alex.pth")
    monkeypatch.setattr(lpips_metric, "linear_weights_path", lambda: tmp_path / "alex.pth")
    monkeypatch.setattr(lpips_metric, "download_alexnet", no_download)
    return checkpoint


def no_download(hub_dir=None):
    raise OSError("no network in tests")


def test_load_builds_from_the_cache_and_the_package(weights, monkeypatch):
    monkeypatch.setitem(sys.modules, "lpips", None)  # lpips does not import: the own network
    network, note = load(1, 64, 64)
    assert isinstance(network, AlexLPIPS) and note["backbone"] == str(weights)
    assert note["implementation"].startswith("the harness's own copy")
    assert "lpips does not import here (ModuleNotFoundError" in note["implementation"]
    assert "AlexNet" in note["definition"] and "OpenSTL" in note["definition"]
    assert float(network(torch.zeros(1, 3, 64, 64), torch.ones(1, 3, 64, 64))) > 0


def test_unavailable_lpips_is_a_reason_not_a_failure(weights, tmp_path, monkeypatch):
    assert load(2, 32, 32) == (None, {"unavailable": "LPIPS takes 1 (grayscale) or 3 (RGB) "
                                                     "channels; these frames have 2"})
    network, note = load(1, 16, 16)
    assert network is None and "frames 16x16 are too small for AlexNet" in note["unavailable"]
    weights.unlink()
    network, note = load(1, 64, 64)
    assert network is None
    assert note["unavailable"] == f"AlexNet weights not in the torch hub cache ({weights})"
    network, note = load(1, 64, 64, download=True)  # asked for: tried, and the failure kept
    assert network is None and "the download failed (OSError: no network in tests)" in \
        note["unavailable"]
    monkeypatch.setattr(lpips_metric, "linear_weights_path", lambda: None)
    assert load(1, 64, 64)[1]["unavailable"].startswith("lpips package not installed")


# ------------------------------------------------------------------------------ CLI, report
def run_cli(tmp_path, *extra):
    code = main(["--preset", "smoke", "--models", "persistence", "--out", str(tmp_path / "out"),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress", *extra])
    folder = tmp_path / "out" / "mmnist-embedded-32px" / "smoke"
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    return code, records, (folder / "summary.md").read_text()


def test_lpips_through_the_cli_into_the_record_and_the_report(weights, tmp_path, capsys):
    code, records, summary = run_cli(tmp_path, "--lpips")
    assert code == 0 and records[-1]["status"] == "ok"
    metrics = records[-1]["metrics"]
    assert len(metrics["per_frame"]["lpips"]) == 4 and metrics["headline"]["lpips"] > 0
    assert metrics["lpips_info"]["backbone"] == str(weights)
    assert records[-1]["config"]["eval"] == {"lpips": True}
    header = next(line for line in summary.splitlines() if line.startswith("| model"))
    assert "LPIPS" in header and "LPIPS (lpips v0.1, AlexNet)" in summary
    assert "LPIPS: LPIPS (lpips v0.1, AlexNet)" in capsys.readouterr().out
    # without --lpips: another cell (its own hash) without LPIPS, its own row beside the first
    code, records, summary = run_cli(tmp_path)
    assert records[-1]["config_hash"] != records[0]["config_hash"]
    assert "lpips" not in records[-1]["metrics"]["headline"]
    accuracy = summary.split("# Cost")[0]
    rows = [line for line in accuracy.splitlines() if line.startswith("| persistence")]
    assert len(rows) == 2 and "(lpips=True)" in rows[0] and rows[1].split("|")[-3].strip() == "n/a"
    assert not {"lpips_info", "lpips_unavailable"} & set(records[-1]["metrics"])


def test_without_weights_the_column_is_absent_and_the_record_says_why(weights, tmp_path):
    weights.unlink()
    code, records, summary = run_cli(tmp_path, "--lpips")
    assert code == 0 and records[-1]["status"] == "ok"
    reason = records[-1]["metrics"]["lpips_unavailable"]
    assert reason.startswith("AlexNet weights not in the torch hub cache")
    assert "the download failed" in reason  # --lpips asked for it; the (stubbed) fetch failed
    assert "lpips" not in records[-1]["metrics"]["headline"]
    header = next(line for line in summary.splitlines() if line.startswith("| model"))
    assert "LPIPS" not in header
    assert f"LPIPS was asked for (--lpips) but not computed: {reason}" in summary
    assert np.isfinite(records[-1]["metrics"]["headline"]["mse"])
