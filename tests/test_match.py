"""--match: every scalable model's width set for the size closest to the target."""
from types import SimpleNamespace

import pytest

import bench.grid.costs
import models
from bench.cli.main import main
from bench.config import get_preset
from bench.cost.match import match_width, parse_match, size
from bench.grid.request import RunRequest, model_config
from bench.grid.sizes import match_sizes
from bench.store import ResultsStore


def _data(preset):
    d = get_preset(preset).data
    size_ = d.frame_size
    return SimpleNamespace(channels=1, height=size_, width=size_, in_len=d.in_len,
                           out_len=d.out_len)


def _request(preset, text, names=None):
    return RunRequest(models=names or models.list_models(), preset=get_preset(preset), seeds=[0],
                      device=None, out_root=None, match=parse_match(text))


def test_match_params_modernn_brings_every_scalable_model_within_5_percent_at_quick():
    data = _data("quick")
    matched = match_sizes(_request("quick", "params=modernn"), data, log=lambda *a: None)
    target = size("params", "modernn", model_config("modernn", get_preset("quick"), data, {}),
                  data.in_len, data.out_len)
    scalable = {n for n in models.list_models() if models.get_spec(n).width_arg}
    assert scalable >= {"convlstm", "predrnn", "simvp", "tau", "phydnet"}
    for name, info in matched.items():
        assert info["target"] == target and info["target_from"] == "modernn"
        if name in scalable:
            assert info["scalable"] and abs(info["achieved"] / target - 1) < 0.05, (name, info)
            config = {**model_config(name, get_preset("quick"), data, {}),
                      info["width_arg"]: info["width"]}
            assert models.parameter_count(name, **config) == info["achieved"]
        else:
            assert not info["scalable"] and "runs at its own size" in info["note"]
    assert matched["modernn"]["width"] == 32  # its own size is the target


@pytest.mark.parametrize("by", ["params", "flops"])
def test_at_smoke_sizes_the_chosen_width_is_the_closest_possible(by):
    """Smoke widths are coarse (hidden 8): within 5% is not always possible; no neighbouring
    width is closer than the chosen one."""
    data, preset = _data("smoke"), get_preset("smoke")
    target = size(by, "modernn", model_config("modernn", preset, data, {}), 4, 4)
    for name in ("convlstm", "predrnn", "mim", "tau"):
        config = model_config(name, preset, data, {})
        info = match_width(name, config, target, by, 4, 4)
        error = abs(info["achieved"] - target)
        for neighbour in (info["width"] - 1, info["width"] + 1):
            if neighbour >= 1:
                other = size(by, name, {**config, info["width_arg"]: neighbour}, 4, 4)
                assert error <= abs(other - target), (name, neighbour)


def test_a_matched_run_records_target_width_and_count_and_the_report_shows_them(
        tmp_path, monkeypatch):
    monkeypatch.setattr(bench.grid.costs, "profile_model", lambda model, *a, **k: {
        "params": sum(p.numel() for p in model.parameters())})
    assert main(["--preset", "smoke", "--models", "convlstm", "persistence", "--epochs", "1",
                 "--steps", "1", "--match", "params=modernn", "--out", str(tmp_path / "r"),
                 "--cache-dir", str(tmp_path / "c"), "--no-progress"]) == 0
    folder = tmp_path / "r" / "mmnist-embedded-32px" / "smoke"
    records = {r["model"]: r for r in ResultsStore(folder).records()}
    conv = records["convlstm"]
    assert conv["match"]["width"] == conv["config"]["model"]["hidden"] != 8
    assert conv["cost"]["params"] == conv["match"]["achieved"]
    assert conv["config"]["match"] == {"by": "params", "value": None, "model": "modernn"}
    assert not records["persistence"]["match"]["scalable"]
    index = (folder / "README.md").read_text()
    assert "## Size-matched models" in index and f"{conv['match']['achieved']:,.0f}" in index


@pytest.mark.parametrize("text,expected", [
    ("params=modernm", "unknown model 'modernm'; did you mean 'modernn'?"),
    ("size=modernn", "unknown target; accepted: params=<N|MODEL> or flops=<N|MODEL>"),
    ("params=-3", "'-3' is not a positive number"),
    ("flops=", "unknown target"),
    ("params=persistence", "'persistence' has no params to match"),
])
def test_bad_targets_and_references_are_clear_errors(tmp_path, capsys, text, expected):
    assert main(["--preset", "smoke", "--models", "convlstm", "--match", text,
                 "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --match {text!r}") and expected in err, err
    assert err.count("\n") == 1
