"""bench.evaluation.openstl: OpenSTL's metric convention beside the harness's, against OpenSTL's
own definitions (openstl/core/metrics.py at c74deb5) re-implemented in NumPy with scikit-image."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from skimage.metrics import structural_similarity
from test_report import record

from bench.evaluation import metrics as M
from bench.evaluation import openstl
from bench.evaluation.loop import evaluate
from bench.report import write_report
from bench.report.notes import openstl_note
from bench.store import ResultsStore

RTOL = 1e-5


def openstl_metric(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """OpenSTL's ``metric(pred, true, metrics=['mse', 'mae', 'ssim', 'psnr'])`` on [B, T, C, H, W]
    frames, line by line, in float64; SSIM with ``data_range=2`` given explicitly (what
    scikit-image <= 0.19.3 assumed for float frames; current scikit-image requires it) and
    ``channel_axis=-1`` (what ``multichannel=True`` meant)."""
    out = {"mse": np.mean((pred - true) ** 2, axis=(0, 1)).sum(),
           "mae": np.mean(np.abs(pred - true), axis=(0, 1)).sum()}
    pred = np.minimum(np.maximum(pred, 0), 1)
    ssim = psnr = 0.0
    for b in range(pred.shape[0]):
        for f in range(pred.shape[1]):
            ssim += structural_similarity(pred[b, f].swapaxes(0, 2), true[b, f].swapaxes(0, 2),
                                          channel_axis=-1, data_range=2)
            psnr += 20.0 * np.log10(1.0 / np.sqrt(np.mean((pred[b, f] - true[b, f]) ** 2)))
    frames = pred.shape[0] * pred.shape[1]
    return {**out, "ssim": ssim / frames, "psnr": psnr / frames}


def headline(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    acc = M.PerFrameMetrics(convention=openstl.frame_metrics)
    half = len(pred) // 2  # two batches, as evaluate accumulates them
    for part in (slice(0, half), slice(half, None)):
        acc.update(torch.from_numpy(pred[part]), torch.from_numpy(true[part]))
    return acc.headline()


@pytest.mark.parametrize("shape", [(4, 3, 1, 16, 16), (3, 2, 3, 12, 20)])
def test_matches_openstls_definitions_on_random_frames(shape):
    rng = np.random.default_rng(0)
    true = rng.random(shape)
    pred = true + rng.normal(0.0, 0.3, shape)  # partly outside [0, 1]
    assert pred.min() < 0 and pred.max() > 1
    got, want = headline(pred, true), openstl_metric(pred, true)
    assert set(got) == set(openstl.NAMES)
    for name in openstl.NAMES:
        assert got[name] == pytest.approx(want[name], rel=RTOL), name


def test_mse_and_mae_before_clipping_differ_from_after():
    true = np.full((1, 1, 1, 8, 8), 0.5)
    pred = true.copy()
    pred[..., 0, 0] = 2.0  # one pixel 1.5 off, 0.5 off once clipped to 1
    theirs = openstl.frame_metrics(torch.from_numpy(pred), torch.from_numpy(true))
    ours = M.frame_metrics(torch.from_numpy(pred), torch.from_numpy(true))
    assert theirs["mse"].item() == pytest.approx(1.5**2)
    assert theirs["mae"].item() == pytest.approx(1.5)
    assert ours["mse"].item() == pytest.approx(0.5**2)
    assert ours["mae"].item() == pytest.approx(0.5)
    # SSIM and PSNR take the clipped prediction in both conventions
    assert theirs["psnr"].item() == pytest.approx(ours["psnr"].item())


def test_ssim_data_range_two_on_floats_is_not_range_255_on_uint8():
    rng = np.random.default_rng(3)
    true = 0.1 * rng.random((1, 1, 1, 16, 16))  # dim, low-contrast frames: where C1, C2 matter
    pred = np.clip(true + rng.normal(0.0, 0.03, true.shape), 0, 1)
    theirs = openstl.frame_metrics(torch.from_numpy(pred), torch.from_numpy(true))["ssim"].item()
    ours = M.frame_metrics(torch.from_numpy(pred), torch.from_numpy(true))["ssim"].item()
    q = [np.round(x[0, 0, 0] * 255).astype(np.uint8) for x in (pred, true)]
    assert ours == pytest.approx(structural_similarity(q[0], q[1], data_range=255), rel=RTOL)
    assert theirs == pytest.approx(
        structural_similarity(pred[0, 0, 0], true[0, 0, 0], data_range=2), rel=RTOL)
    # range 2 on [0, 1] frames quadruples C1 and C2: SSIM inflated
    assert theirs > ours + 0.1


class _Offset(torch.nn.Module):
    """Predicts every future frame as the last input frame plus 0.3: outside [0, 1] in places."""

    def forward(self, frames, in_len, out_len):
        future = frames[:, -1:].repeat(1, out_len, 1, 1, 1) + 0.3
        return type("Out", (), {"future": future})()


def test_evaluate_returns_both_conventions_and_keeps_its_own():
    rng = np.random.default_rng(5)
    clips = torch.from_numpy(rng.random((5, 6, 1, 12, 12)).astype(np.float32))
    result = evaluate(_Offset(), clips, 3, 3, torch.device("cpu"), batch_size=2)
    without = evaluate(_Offset(), clips, 3, 3, torch.device("cpu"), batch_size=2, openstl=False)
    assert "openstl" not in without
    assert result["headline"] == without["headline"]
    assert result["per_frame"] == without["per_frame"]
    block = result["openstl"]
    assert block["convention"] == openstl.CONVENTION
    assert set(block["headline"]) == set(block["per_frame"]) == set(openstl.NAMES)
    assert all(len(v) == 3 for v in block["per_frame"].values())
    pred = (clips[:, 2:3].repeat(1, 3, 1, 1, 1) + 0.3).double().numpy()
    want = openstl_metric(pred, clips[:, 3:6].double().numpy())
    for name in openstl.NAMES:
        assert block["headline"][name] == pytest.approx(want[name], rel=RTOL), name
    assert block["headline"]["mse"] > result["headline"]["mse"]  # before clipping: larger


def test_a_non_finite_openstl_value_is_none_not_inf():
    clips = torch.rand((2, 4, 1, 8, 8))

    class Inf(torch.nn.Module):
        def forward(self, frames, in_len, out_len):
            future = torch.full((len(frames), out_len, *frames.shape[2:]), float("inf"))
            return type("Out", (), {"future": future})()

    result = evaluate(Inf(), clips, 2, 2, torch.device("cpu"))
    assert result["openstl"]["headline"]["mse"] is None
    assert result["openstl"]["per_frame"]["mae"] == [None, None]
    assert np.isfinite(result["headline"]["mse"])  # clipped: finite, as before


def _with_openstl(rec: dict, mse: float) -> dict:
    headline = {"mse": mse, "mae": 2 * mse, "ssim": 0.95, "psnr": 21.0}
    rec["metrics"]["openstl"] = {"headline": headline,
                                 "per_frame": {k: [v, v] for k, v in headline.items()},
                                 "convention": openstl.CONVENTION}
    return rec


def test_report_names_the_convention_and_puts_openstls_last_in_summary_csv(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, marked in ((old, False), (new, True)):
        store = ResultsStore(folder)
        for seed, mse in enumerate([20.0, 22.0]):
            rec = record("modernn", seed, mse)
            store.append(_with_openstl(rec, mse + 1) if marked else rec)
        store.append(record("convlstm", 0, 30.0))  # an older record, without OpenSTL's
        write_report(folder)
    old_csv, new_csv = (pd.read_csv(f / "summary.csv") for f in (old, new))
    added = list(new_csv.columns[len(old_csv.columns):])
    assert list(new_csv.columns[:len(old_csv.columns)]) == list(old_csv.columns)
    assert sorted(added) == sorted(f"openstl_{k}{s}" for k in openstl.NAMES for s in ("", "_std"))
    row = new_csv.set_index("model").loc["modernn"]
    assert row["openstl_mse"] == pytest.approx(22.0) and row["openstl_mse_std"] == pytest.approx(2 ** 0.5)
    assert np.isnan(new_csv.set_index("model").loc["convlstm", "openstl_mse"])
    note = openstl_note(ResultsStore(new).records())
    assert "The table follows this harness's convention; OpenSTL's" in note
    assert openstl_note(ResultsStore(old).records()) == ""
    assert "openstl" not in (old / "summary.md").read_text()
    new_md = (new / "summary.md").read_text()
    assert new_md.count(note) == 1 and new_md.replace(note, "") == (old / "summary.md").read_text()


def _dist_worker(rank: int, world: int, init_file: str, batches, out: dict) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        acc = M.PerFrameMetrics(convention=openstl.frame_metrics)
        acc.update(*(torch.from_numpy(a) for a in batches[rank]))
        headline = acc.headline()
        if rank == 0:
            out.update(headline)
    finally:
        dist.destroy_process_group()


def test_all_reduced_across_ranks_as_one_process(tmp_path):
    rng = np.random.default_rng(7)
    batches = [(rng.random((n, 2, 1, 12, 12)) * 1.2 - 0.1, rng.random((n, 2, 1, 12, 12)))
               for n in (1, 3)]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_dist_worker, args=(2, str(tmp_path / "init"), batches, out), nprocs=2)
        got = dict(out)
    want = openstl_metric(*(np.concatenate(parts) for parts in zip(*batches, strict=True)))
    for name in openstl.NAMES:
        assert got[name] == pytest.approx(want[name], rel=RTOL), name
