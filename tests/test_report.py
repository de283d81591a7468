"""Reports rebuilt from a store written by hand: rows, means, deviations, failures, plots."""
import numpy as np
import pandas as pd
import pytest

from bench.cli.main import main
from bench.report import write_report
from bench.report.aggregate import accuracy_frame
from bench.store import ResultsStore

INFO = {"name": "toy", "source": "hand-written records"}


def record(model, seed, mse, ssim=0.9, status="ok", error=None, params=1000):
    per_frame = {"mse": [mse - 1, mse + 1], "mse_per_pixel": [mse / 4096] * 2, "mae": [2 * mse] * 2,
                 "psnr": [20.0, 19.0], "ssim": [ssim, ssim - 0.01]}
    headline = {k: float(np.mean(v)) for k, v in per_frame.items()}
    # 16 test clips around the headline MSE; the same clip pattern for every model and seed
    spread = np.linspace(-4, 4, 16)
    per_clip = {"mse": list(mse + spread), "mae": [2 * mse] * 16, "ssim": [ssim] * 16,
                "psnr": [19.5] * 16}
    cost = {"params": params, "used_params": 1000, "gmacs_fvcore": 1.0 + seed, "gmacs_torch": 1.0,
            "train_seq_s": 5.0, "infer_seq_s": 50.0, "infer_ms_per_seq_b1": 20.0,
            "train_peak_mb": 10.0, "infer_peak_mb": 2.0, "train_efficiency": 0.1,
            "amp": "none", "bench_batch": 8, "threads": 2}
    ok = status == "ok"
    return {
        "mode": "train", "model": model, "dataset": "toy", "preset": "quick", "seed": seed,
        "config_hash": "abc", "status": status, "error": error, "dataset_info": INFO,
        "device_name": "test CPU",
        "metrics": {"headline": headline, "per_frame": per_frame, "per_clip": per_clip}
        if ok else None,
        "cost": cost if ok else None,
        "train": {"wall_s": 60.0, "history": [{"epoch": 1, "train_loss": 3.0, "val_mse": mse + 5},
                                              {"epoch": 2, "train_loss": 2.0, "val_mse": mse}]}
        if ok else None,
    }


@pytest.fixture
def store(tmp_path):
    store = ResultsStore(tmp_path)
    # modernn: seeds 0-2; convlstm: seeds 0-2, always 10 worse; persistence: one seed; one failure
    for seed, mse in enumerate([20.0, 22.0, 24.0]):
        store.append(record("modernn", seed, mse))
        store.append(record("convlstm", seed, mse + 10 + seed * 0.5, ssim=0.8))
    store.append(record("persistence", 0, 80.0, ssim=0.6, params=0))
    store.append(record("broken", 0, 0.0, status="failed", error="RuntimeError: boom at step 3"))
    examples = tmp_path / "examples"
    examples.mkdir()
    rng = np.random.default_rng(0)
    np.savez_compressed(examples / "modernn__seed0.npz",
                        **{k: rng.integers(0, 255, (2, n, 1, 16, 16), dtype=np.uint8)
                           for k, n in (("input", 3), ("target", 2), ("prediction", 2))})
    return store


def test_accuracy_rows_means_deviations_and_paired_test(store):
    acc = accuracy_frame(store.latest(), "modernn").set_index("model")
    assert list(acc.index) == ["modernn", "convlstm", "persistence", "broken"]
    assert acc.loc["modernn", "mse"] == pytest.approx(22.0)
    assert acc.loc["modernn", "mse_std"] == pytest.approx(2.0)  # sample std of 20, 22, 24
    assert acc.loc["convlstm", "mse"] == pytest.approx(32.5)
    assert acc.loc["modernn", "seeds"] == 3 and acc.loc["persistence", "seeds"] == 1
    assert np.isnan(acc.loc["persistence", "mse_std"])
    assert acc.loc["convlstm", "p_seeds"] < 0.05  # consistently worse on every seed
    assert acc.loc["convlstm", "delta_mse"] == pytest.approx(10.5)
    # the same clip pattern: every clip's difference is 10.5, and a paired interval has no width
    assert acc.loc["convlstm", ["delta_mse_low", "delta_mse_high"]].tolist() == pytest.approx([10.5] * 2)
    assert np.isnan(acc.loc["persistence", "p_seeds"])  # no parameters: not tested over seeds
    assert acc.loc["persistence", "delta_mse"] == pytest.approx(80 - 22)
    assert acc.loc["broken", "status"] == "failed: RuntimeError: boom at step 3"


def test_written_tables_mark_best_and_failures(store, tmp_path):
    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "**22.00 ± 2.00**" in summary  # best MSE, bold, with its deviation
    assert "failed: RuntimeError: boom at step 3" in summary
    assert "hand-written records" in summary  # the data source is in the caption
    csv = pd.read_csv(tmp_path / "summary.csv").set_index("model")
    assert csv.loc["convlstm", "mse"] == pytest.approx(32.5)
    latex = (tmp_path / "summary.tex").read_text()
    assert r"\toprule" in latex and r"\textbf{22.00 $\pm$ 2.00}" in latex
    assert "per_frame.png" in (tmp_path / "README.md").read_text()


def test_plots_and_examples_are_written(store, tmp_path):
    write_report(tmp_path)
    for name in ("per_frame", "pareto", "loss_curves", "cost_bars"):
        for suffix in (".png", ".pdf"):
            assert (tmp_path / f"{name}{suffix}").stat().st_size > 1000, name + suffix
    assert (tmp_path / "examples" / "modernn__seed0.png").stat().st_size > 1000
    gif = tmp_path / "examples" / "modernn__seed0.gif"
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_report_command_rebuilds_from_the_store(store, tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "README.md").exists()
    assert "report:" in capsys.readouterr().out
    assert main(["report", "--out", str(tmp_path / "nothing")]) == 2


def profile_record(model, **cost):
    row = record(model, 0, 1.0)
    return {**row, "mode": "profile", "metrics": None, "train": None,
            "cost": {**row["cost"], **cost}}


def test_profile_only_store_gets_cost_tables_and_plots(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(profile_record("modernn", params=2_000_000))
    store.append(profile_record("convlstm", train_seq_s=9.0))
    assert write_report(tmp_path) == tmp_path / "summary.md"
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("# Cost: toy, preset quick") and "| convlstm" in summary
    csv = pd.read_csv(tmp_path / "summary.csv").set_index("model")
    assert csv.loc["modernn", "params"] == 2_000_000 and csv.loc["convlstm", "train_seq_s"] == 9.0
    assert r"\toprule" in (tmp_path / "summary.tex").read_text()
    for suffix in (".png", ".pdf"):
        assert (tmp_path / f"cost_bars{suffix}").stat().st_size > 1000
    assert "cost_bars.png" in (tmp_path / "README.md").read_text()


def test_report_goes_on_past_a_folder_that_fails(store, tmp_path, capsys):
    broken = tmp_path / "broken"
    ResultsStore(broken).append({k: v for k, v in record("modernn", 0, 1.0).items()
                                 if k != "dataset_info"})
    empty = tmp_path / "empty"
    ResultsStore(empty).append({**record("modernn", 0, 1.0), "mode": "other"})
    assert main(["report", "--out", str(broken), str(empty), str(tmp_path)]) == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in captured.err
    assert errors[0].startswith(f"error: cannot report {broken}: KeyError")
    assert f"no training or profile records in {empty}" in errors[1]
    assert f"report: {tmp_path / 'summary.md'}" in captured.out  # the good store still reported


def test_titles_name_the_dataset_not_absolute_paths(tmp_path):
    store = ResultsStore(tmp_path)
    info = {"name": "storms", "source": "storms: sequences from /data/deep/storms.h5"}
    store.append({**record("modernn", 0, 1.0), "dataset_info": info})
    write_report(tmp_path)
    for name in ("summary.md", "README.md", "summary.tex"):
        text = (tmp_path / name).read_text()
        assert "/data/deep" not in text, name
        assert name.endswith(".tex") or "Data: storms: sequences from storms.h5" in text, name
    assert (tmp_path / "README.md").read_text().startswith("# storms, preset quick\n")


# ------------------------------------------------------------------------------ data units
def kelvin_record(model, seed, mse_per_pixel, mae_per_pixel, scale=100.0, unit="K"):
    """A WeatherBench-like record: 1 x 32 x 64 frames (2048 pixels), declared unit K."""
    row = record(model, seed, 1.0)
    pixels = 32 * 64
    row["metrics"]["headline"].update(mse_per_pixel=mse_per_pixel, mse=mse_per_pixel * pixels,
                                      mae=mae_per_pixel * pixels)
    row["dataset_info"] = {
        "name": "weatherbench", "source": "hand-written records", "channels": 1, "height": 32,
        "width": 64, "normalization": {
            "scale": [scale], "offset": [200.0], "units": "K",
            "data_units": {"unit": unit, "scale": [scale], "offset": [200.0],
                           "source": "the NetCDF variable's units"}}}
    return row


def test_metrics_in_data_units_beside_the_unit_range_ones(tmp_path):
    store = ResultsStore(tmp_path)
    # by hand, with s = 100 K: MSE/pixel 4e-4 -> 4e-4 * 100^2 = 4 K^2, RMSE sqrt(4e-4) * 100
    # = 2 K; MAE summed over 2048 pixels = 0.015 * 2048 -> 0.015 per pixel -> 1.5 K
    store.append(kelvin_record("modernn", 0, 4e-4, 0.015))
    store.append(kelvin_record("convlstm", 0, 9e-4, 0.025))  # 9 K^2, 3 K, 2.5 K
    acc = accuracy_frame(store.latest()).set_index("model")
    assert acc.loc["modernn", ["mse_units", "rmse_units", "mae_units"]].tolist() == \
        pytest.approx([4.0, 2.0, 1.5])
    assert acc.loc["convlstm", ["mse_units", "rmse_units", "mae_units"]].tolist() == \
        pytest.approx([9.0, 3.0, 2.5])
    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    header = next(line for line in summary.splitlines() if line.startswith("| model"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[5:9] == ["PSNR (dB)", "MSE/pixel (K²)", "RMSE (K)", "MAE/pixel (K)"]
    modernn = next(line for line in summary.splitlines() if line.startswith("| modernn"))
    assert "**4.000**" in modernn and "**2.000**" in modernn and "**1.500**" in modernn
    assert "s = 100 K" in summary and "√(MSE/pixel) × s" in summary
    csv = pd.read_csv(tmp_path / "summary.csv").set_index("model")
    assert csv.loc["convlstm", "rmse_units"] == pytest.approx(3.0)
    assert csv.loc["convlstm", "unit"] == "K"
    assert "RMSE (K)" in (tmp_path / "summary.tex").read_text()
    assert "MSE/pixel (K$^2$)" in (tmp_path / "summary.tex").read_text()
    print("\n" + summary.split("\n\n")[2])  # the rendered table, for the eye (pytest -s)


def test_a_unit_of_several_words_is_squared_as_a_whole(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(kelvin_record("modernn", 0, 1e-4, 0.01, scale=1292.0, unit="taxis/30 min"))
    write_report(tmp_path)
    header = next(line for line in (tmp_path / "summary.md").read_text().splitlines()
                  if line.startswith("| model"))
    assert "MSE/pixel ((taxis/30 min)²)" in header and "RMSE (taxis/30 min)" in header
    row = next(line for line in (tmp_path / "summary.md").read_text().splitlines()
               if line.startswith("| modernn"))
    assert "12.92" in row  # RMSE: sqrt(1e-4) * 1292 taxis per 30 minutes


def test_a_dataset_without_units_has_no_such_columns(store, tmp_path):
    write_report(tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "RMSE" not in summary and "MAE/pixel" not in summary and " In " not in summary
    assert "rmse_units" not in pd.read_csv(tmp_path / "summary.csv").columns


def test_a_test_subset_of_a_published_split_is_named_in_the_data_line(tmp_path):
    store = ResultsStore(tmp_path)
    row = kelvin_record("modernn", 0, 4e-4, 0.015)
    row["dataset_info"]["windows"] = {"test": {"available": 17495, "used": 10000}}
    store.append(row)
    write_report(tmp_path)
    assert "Test: 10,000 of the split's 17,495 windows" in (tmp_path / "summary.md").read_text()
