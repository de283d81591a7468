"""The ``onecycle`` schedule (OpenSTL's OneCycle, stepped per iteration), OpenSTL's linear
scheduled sampling, a resumed run continuing the schedule exactly, and a smoke-sized run of
the ``openstl`` preset whose records hold each model's recipe."""
import dataclasses
import json
import shutil

import pytest
import torch

import models
from bench.cli.run import main
from bench.config import TrainConfig, get_preset
from bench.grid.request import load_data, model_config
from bench.train.loop import Trainer
from bench.train.plans import EpochPlan
from bench.train.sampling import sampling_eta

SMOKE = get_preset("smoke")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return load_data(SMOKE.data, None, str(tmp_path_factory.mktemp("cache")))


def test_openstl_sampling_lowers_eta_before_each_iteration_s_draws():
    cfg = TrainConfig(sampling="openstl", sampling_steps=50_000)
    # OpenSTL (predrnn_utils.schedule_sampling): eta -= 2e-5 at every iteration before its draws
    eta, expected = 1.0, []
    for step in range(50_005):
        eta = eta - 0.00002 if step < 50_000 else 0.0
        expected.append(eta)
    for step in (0, 1, 24_999, 49_998, 49_999, 50_000, 50_004):
        assert sampling_eta(step, cfg) == pytest.approx(max(0.0, expected[step]), abs=1e-9)
    assert sampling_eta(0, cfg) == pytest.approx(0.99998)  # "linear" would give 1.0 here


def trainer(data, folder, lrs, **changes):
    cfg = dataclasses.replace(SMOKE.train, lr_schedule="onecycle", optimizer="adam", epochs=2,
                              steps_per_epoch=5, reverse_pass=False, checkpoint_every_steps=1,
                              checkpoint_every_seconds=0, **changes)
    torch.manual_seed(0)
    model = models.create_model("convlstm", **model_config("convlstm", SMOKE, data, {}))
    run = Trainer(model, data, cfg, torch.device("cpu"), 0, folder, name="convlstm",
                  log=lambda *a: None)
    run.optimizer.seen = lrs  # filled by the spy on EpochPlan.end (below)
    return run


@pytest.fixture(autouse=True)
def spy_on_iteration_ends(monkeypatch):
    """At each iteration's end, before the scheduler steps: the lr and beta1 the step used (and
    ``optimizer.on_end``, if set, is called first)."""
    end = EpochPlan.end

    def spy(self, seconds):
        optimizer = self.scheduler.optimizer
        if hasattr(optimizer, "on_end"):
            optimizer.on_end()
        if hasattr(optimizer, "seen"):
            group = optimizer.param_groups[0]
            optimizer.seen.extend([float(group["lr"]), float(group["betas"][0])])
        return end(self, seconds)

    monkeypatch.setattr(EpochPlan, "end", spy)


def test_onecycle_is_stepped_every_iteration_as_torch_defines_it(data, tmp_path):
    lrs = []
    trainer(data, tmp_path, lrs, lr=0.01).fit(progress=False)
    reference = torch.optim.lr_scheduler.OneCycleLR(
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.01), max_lr=0.01,
        total_steps=10, final_div_factor=1e4)
    expected = []
    for _ in range(10):
        group = reference.optimizer.param_groups[0]
        expected.extend([group["lr"], group["betas"][0]])
        reference.optimizer.step()
        reference.step()
    assert lrs == pytest.approx(expected)
    assert lrs[0] == pytest.approx(0.01 / 25) and max(lrs[::2]) == pytest.approx(0.01)


def test_a_run_resumed_mid_epoch_continues_the_onecycle_schedule_exactly(data, tmp_path):
    whole, parts, copied = [], [], tmp_path / "resumed"
    run = trainer(data, tmp_path / "whole", whole)

    def copy_at_iteration_8():  # last.pt then holds 7 iterations (mid-epoch 2)
        if len(whole) == 2 * 7:
            shutil.copytree(tmp_path / "whole", copied)

    run.optimizer.on_end = copy_at_iteration_8
    run.fit(progress=False)
    assert torch.load(copied / "last.pt", weights_only=False)["epoch"] == 1  # mid-epoch 2
    trainer(data, copied, parts).fit(progress=False)
    assert len(whole) == 2 * 10 and parts == whole[2 * 7:]


def test_a_smoke_sized_run_under_the_openstl_preset_records_each_recipe(tmp_path, monkeypatch,
                                                                        no_profile, capsys):
    from bench.config import PRESETS
    smoke_sized = dataclasses.replace(
        PRESETS["openstl"], train=dataclasses.replace(
            PRESETS["openstl"].train, epochs=1, steps_per_epoch=2, batch_size=2,
            eval_batch_size=4),
        data=dataclasses.replace(SMOKE.data), profile_repeats=1)
    recipes = {name: dataclasses.replace(recipe, model={**recipe.model, "hidden": 8, "layers": 1})
               for name, recipe in smoke_sized.recipes.items() if name in ("convlstm", "predrnnv2")}
    monkeypatch.setitem(PRESETS, "openstl", dataclasses.replace(smoke_sized, recipes=recipes))
    out = tmp_path / "results"
    code = main(["--preset", "openstl", "--models", "convlstm", "persistence",
                 "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu",
                 "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "   recipe: chengtan9907/OpenSTL configs/mmnist/ConvLSTM.py @ c74deb5, lines 1-21\n" in printed
    assert "   recipe: no published recipe; no OpenSTL config: " in printed  # persistence
    store = out / "mmnist-embedded-32px" / "openstl" / "records.jsonl"
    records = {r["model"]: r for r in map(json.loads, store.read_text().splitlines())}
    convlstm = records["convlstm"]["config"]
    assert convlstm["recipe"]["source"].startswith("chengtan9907/OpenSTL configs/mmnist/ConvLSTM.py")
    assert convlstm["train"]["lr_schedule"] == "onecycle" and convlstm["train"]["lr"] == 5e-4
    assert convlstm["train"]["sampling"] == "openstl" and convlstm["model"]["filter_size"] == 5
    assert records["persistence"]["config"]["recipe"]["source"] is None
    reference = torch.optim.lr_scheduler.OneCycleLR(
        torch.optim.Adam([torch.zeros(1, requires_grad=True)]), max_lr=5e-4, total_steps=2,
        final_div_factor=1e4)
    for _ in range(2):
        reference.optimizer.step()
        reference.step()
    assert records["convlstm"]["train"]["history"][0]["lr"] == pytest.approx(
        reference.get_last_lr()[0])  # stepped per iteration, not once at the epoch's end
    summary = (store.parent / "summary.md").read_text()
    assert "| convlstm " in summary and "sampling=" not in summary  # recipes are the models' own
    assert "OpenSTL selects on the test set" in summary
    assert "Published results" not in summary  # generated test clips: not the published data


def test_the_recipe_is_part_of_the_config_hash(data):
    from bench.grid.records import cell_config
    from bench.grid.request import RunRequest
    request = RunRequest(models=["predrnnv2"], preset=get_preset("openstl"), seeds=[0],
                         device=torch.device("cpu"), out_root="results")
    config = cell_config("predrnnv2", request, data)
    assert config["train"]["sampling"] == "reverse" and config["model"]["decouple_beta"] == 0.1
    assert config["recipe"]["source"].startswith("chengtan9907/OpenSTL configs/mmnist/PredRNNv2")
    quick = dataclasses.replace(request, preset=get_preset("quick"))
    assert "recipe" not in cell_config("predrnnv2", quick, data)  # other presets: as before
    from bench.config import config_hash
    changed = {**config, "recipe": {**config["recipe"], "note": "other"}}
    assert config_hash(changed) != config_hash(config)
