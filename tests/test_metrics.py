"""bench.evaluation.metrics against independent NumPy / scikit-image references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.evaluation import metrics as M

RTOL = 1e-5

# --------------------------------------------------------------------------- references


def ref_mse(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return ((p.astype(np.float64) - t.astype(np.float64)) ** 2).sum(axis=(2, 3, 4))


def ref_mae(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.abs(p.astype(np.float64) - t.astype(np.float64)).sum(axis=(2, 3, 4))


def ref_psnr(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    mse_pix = ((p.astype(np.float64) - t.astype(np.float64)) ** 2).mean(axis=(2, 3, 4))
    return 10 * np.log10(1.0 / mse_pix)


def per_frame(fn, p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Apply a per-frame function fn(target_frame [C,H,W], pred_frame) over [B, T]."""
    b, tt = p.shape[:2]
    return np.array([[fn(t[i, j], p[i, j]) for j in range(tt)] for i in range(b)])


def sk_ssim(t: np.ndarray, p: np.ndarray, data_range: float) -> float:
    if t.shape[0] == 1:  # plain 2-D call for single-channel frames
        return structural_similarity(t[0], p[0], data_range=data_range)
    return structural_similarity(t, p, data_range=data_range, channel_axis=0)


def ref_quantize(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x.astype(np.float64), 0, 1) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- data


def random_frames(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random(shape), rng.random(shape)


def digit_frames(shape, seed=1):
    """Mostly-zero frames with bright rectangles and strokes; pred shifted and blurred."""
    rng = np.random.default_rng(seed)
    b, t, c, h, w = shape
    target = np.zeros(shape)
    for i in range(b):
        for j in range(t):
            for _ in range(3):
                y, x = rng.integers(2, h - 12), rng.integers(2, w - 12)
                target[i, j, :, y : y + rng.integers(3, 10), x : x + 3] = rng.uniform(0.7, 1)
            y0 = rng.integers(0, h)
            cols = np.arange(w // 4, 3 * w // 4)
            rows = np.clip(y0 + (cols - cols[0]) // 2, 0, h - 1)
            target[i, j, :, rows, cols] = 1.0
    pred = np.roll(target, shift=(1, 2), axis=(3, 4))
    pred = gaussian_filter(pred, sigma=(0, 0, 0, 1.0, 1.0))
    return pred, target


CASES = {
    "random": random_frames((2, 3, 1, 64, 64)),
    "digits": digit_frames((2, 4, 1, 64, 64)),
    "multichannel": random_frames((2, 2, 3, 32, 32), seed=2),
    "nonsquare": digit_frames((2, 3, 1, 32, 48), seed=3),
    "nonsquare_rgb": random_frames((1, 2, 3, 32, 48), seed=4),
}


def t64(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


@pytest.fixture(params=list(CASES))
def case(request):
    p, t = CASES[request.param]
    return p, t


# --------------------------------------------------------------------------- tests


def test_mse_mae_psnr_match_numpy(case):
    p, t = case
    tp, tt = t64(p), t64(t)
    assert M.mse(tp, tt).shape == p.shape[:2]
    np.testing.assert_allclose(M.mse(tp, tt).numpy(), ref_mse(p, t), rtol=RTOL)
    np.testing.assert_allclose(M.mae(tp, tt).numpy(), ref_mae(p, t), rtol=RTOL)
    npix = np.prod(p.shape[2:])
    np.testing.assert_allclose(M.mse_per_pixel(tp, tt).numpy(), ref_mse(p, t) / npix, rtol=RTOL)
    np.testing.assert_allclose(M.psnr(tp, tt).numpy(), ref_psnr(p, t), rtol=RTOL)
    sk = per_frame(lambda a, b: peak_signal_noise_ratio(a, b, data_range=1.0), p, t)
    np.testing.assert_allclose(M.psnr(tp, tt).numpy(), sk, rtol=RTOL)


def test_mse_is_summed_not_averaged():
    # Constant error 0.5 on a 64x64 frame: sum = 4096 * 0.25 = 1024 (OpenSTL issue #134).
    t = torch.zeros(1, 1, 1, 64, 64)
    p = torch.full_like(t, 0.5)
    assert M.mse(p, t).item() == pytest.approx(1024.0)
    assert M.mae(p, t).item() == pytest.approx(2048.0)
    assert M.mse_per_pixel(p, t).item() == pytest.approx(0.25)


def test_ssim_float_matches_skimage(case):
    p, t = case
    got = M.ssim(t64(p), t64(t), data_range=1.0).numpy()
    want = per_frame(lambda a, b: sk_ssim(a, b, 1.0), p, t)
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_ssim_uint8_matches_skimage(case):
    p, t = case
    qp, qt = ref_quantize(p), ref_quantize(t)
    assert np.array_equal(M.quantize_uint8(t64(p)).numpy(), qp)
    got = M.ssim(M.quantize_uint8(t64(p)) / 255, M.quantize_uint8(t64(t)) / 255).numpy()
    want = per_frame(lambda a, b: sk_ssim(a, b, 255), qp, qt)
    np.testing.assert_allclose(got, want, rtol=RTOL)
    # frame_metrics uses the same uint8 convention
    np.testing.assert_allclose(M.frame_metrics(t64(p), t64(t))["ssim"].numpy(), want, rtol=RTOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_low_precision_inputs_computed_in_float64(dtype):
    p, t = CASES["digits"]
    tp, tt = t64(p).to(dtype), t64(t).to(dtype)
    p_, t_ = tp.double().numpy(), tt.double().numpy()  # the values the module actually sees
    out = M.frame_metrics(tp, tt)
    assert all(v.dtype == torch.float64 for v in out.values())
    np.testing.assert_allclose(out["mse"].numpy(), ref_mse(p_, t_), rtol=RTOL)
    want = per_frame(lambda a, b: sk_ssim(a, b, 1.0), p_, t_)
    np.testing.assert_allclose(M.ssim(tp, tt).numpy(), want, rtol=RTOL)


def test_per_frame_metrics_two_batches_equal_concatenated():
    p, t = CASES["digits"]
    p2, t2 = random_frames((3, 4, 1, 64, 64), seed=7)
    acc = M.PerFrameMetrics()
    acc.update(t64(p), t64(t))
    acc.update(t64(p2), t64(t2))
    got = acc.compute()
    full = M.frame_metrics(t64(np.concatenate([p, p2])), t64(np.concatenate([t, t2])))
    assert set(got) == set(M.METRIC_NAMES)
    for k in M.METRIC_NAMES:
        assert got[k].shape == (4,)
        torch.testing.assert_close(got[k], full[k].mean(dim=0), rtol=1e-12, atol=0)
    head = acc.headline()
    assert all(isinstance(v, float) for v in head.values())
    assert head["mse"] == pytest.approx(full["mse"].mean().item(), rel=1e-12)
    # hand-checked values of one entry against the NumPy reference
    want_mse = np.concatenate([ref_mse(p, t), ref_mse(p2, t2)]).mean(axis=0)
    np.testing.assert_allclose(got["mse"].numpy(), want_mse, rtol=RTOL)
    acc.reset()
    with pytest.raises(RuntimeError):
        acc.compute()
    acc.update(t64(p2), t64(t2))
    torch.testing.assert_close(acc.compute()["mae"], M.mae(t64(p2), t64(t2)).mean(dim=0))


def test_per_frame_metrics_rejects_changed_horizon():
    acc = M.PerFrameMetrics()
    acc.update(torch.rand(1, 4, 1, 16, 16), torch.rand(1, 4, 1, 16, 16))
    with pytest.raises(ValueError, match="horizon"):
        acc.update(torch.rand(1, 3, 1, 16, 16), torch.rand(1, 3, 1, 16, 16))


def test_clip_changes_out_of_range_predictions():
    p, t = CASES["random"]
    p_out = p * 1.6 - 0.3  # values in [-0.3, 1.3]
    clipped = M.frame_metrics(t64(p_out), t64(t), clip=True)
    raw = M.frame_metrics(t64(p_out), t64(t), clip=False)
    for k in ("mse", "mae", "psnr"):
        assert not torch.allclose(clipped[k], raw[k]), k
    np.testing.assert_allclose(clipped["mse"].numpy(), ref_mse(np.clip(p_out, 0, 1), t), rtol=RTOL)
    np.testing.assert_allclose(raw["mse"].numpy(), ref_mse(p_out, t), rtol=RTOL)
    np.testing.assert_allclose(raw["psnr"].numpy(), ref_psnr(p_out, t), rtol=RTOL)
    # in-range predictions: clipping is a no-op
    a = M.frame_metrics(t64(p), t64(t), clip=True)
    b = M.frame_metrics(t64(p), t64(t), clip=False)
    for k in M.METRIC_NAMES:
        torch.testing.assert_close(a[k], b[k])


def test_identical_frames_psnr_capped_and_no_nan():
    _, t = CASES["digits"]
    out = M.frame_metrics(t64(t), t64(t))
    assert torch.all(out["psnr"] == 100.0)  # documented cap: mse clamped to 1e-10
    for k, v in out.items():
        assert not torch.isnan(v).any(), k
        assert torch.isfinite(v).all(), k
    torch.testing.assert_close(out["ssim"], torch.ones_like(out["ssim"]))
    assert torch.all(out["mse"] == 0)
    z = torch.zeros(1, 2, 1, 8, 8)  # all-black frames: SSIM 1, no 0/0
    assert torch.isfinite(M.ssim(z, z)).all() and torch.all(M.ssim(z, z) == 1)


def test_psnr_no_uint8_wraparound():
    # target 0.0 vs pred 1/255: a uint8 difference (0 - 1) would wrap to 255.
    t = torch.zeros(1, 1, 1, 8, 8)
    p = torch.full_like(t, 1 / 255)
    assert M.psnr(p, t).item() == pytest.approx(20 * np.log10(255), rel=1e-6)
    assert M.psnr(t, p).item() == pytest.approx(20 * np.log10(255), rel=1e-6)


def test_shape_mismatch_error_names_both_shapes():
    a, b = torch.rand(2, 3, 1, 16, 16), torch.rand(2, 4, 1, 16, 16)
    for fn in (M.mse, M.mae, M.psnr, M.ssim, M.frame_metrics, M.PerFrameMetrics().update):
        with pytest.raises(ValueError) as err:
            fn(a, b)
        msg = str(err.value)
        assert "(2, 3, 1, 16, 16)" in msg and "(2, 4, 1, 16, 16)" in msg, msg


def test_ssim_rejects_frames_smaller_than_window():
    x = torch.rand(1, 1, 1, 6, 32)
    with pytest.raises(ValueError, match="window"):
        M.ssim(x, x)


# --------------------------------------------------------------------------- distributed


def _dist_worker(rank: int, world: int, init_file: str, batches, out: dict) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        acc = M.PerFrameMetrics()
        p, t = batches[rank]
        acc.update(t64(p), t64(t))
        res = acc.compute()
        if rank == 0:
            out.update({k: v.numpy() for k, v in res.items()})
    finally:
        dist.destroy_process_group()


def test_per_frame_metrics_all_reduces_under_distributed(tmp_path):
    batches = [random_frames((1, 2, 1, 16, 16), seed=10), random_frames((3, 2, 1, 16, 16), 11)]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_dist_worker, args=(2, str(tmp_path / "init"), batches, out), nprocs=2)
        got = dict(out)
    p = np.concatenate([b[0] for b in batches])
    t = np.concatenate([b[1] for b in batches])
    np.testing.assert_allclose(got["mse"], ref_mse(p, t).mean(axis=0), rtol=RTOL)
    want = per_frame(lambda a, b: sk_ssim(a, b, 255), ref_quantize(p), ref_quantize(t))
    np.testing.assert_allclose(got["ssim"], want.mean(axis=0), rtol=RTOL)
