"""The ``openstl`` preset's recipes against OpenSTL's own Moving MNIST configs (vendored in
tests/fixtures/openstl_configs/ with their repository, path and commit), read with ast: one test
per model that its training options and sizes are the config's values, every key of the config
accounted for."""
import ast
import inspect
from pathlib import Path

import pytest

import models
from bench.cli.run import main
from bench.config import get_preset
from bench.recipes import openstl as recipes
from bench.train.optim import ONECYCLE_FINAL_DIV_FACTOR

CONFIGS = Path(__file__).parent / "fixtures" / "openstl_configs"
PRESET = get_preset("openstl")
# our model -> its vendored config
CONFIG_OF = {"convlstm": "ConvLSTM", "predrnn": "PredRNN", "predrnnpp": "PredRNNpp", "mim": "MIM",
             "predrnnv2": "PredRNNv2", "e3dlstm": "E3DLSTM", "mau": "MAU", "phydnet": "PhyDNet",
             "swinlstm": "SwinLSTM-D", "tau": "TAU", "simvp": "SimVP_gSTA",
             "simvp_incepu": "SimVP_IncepU"}
# keys that change nothing in our runs, with the only values we accept for them
INERT = {"method": None, "stride": 1, "sampling_start_value": 1.0, "val_batch_size": 16,
         "drop_last": True, "cell_mode": "normal", "model_mode": "normal", "model_type": None}


def assignments(path: Path) -> dict:
    """The ``name = literal`` assignments of a config file."""
    tree = ast.parse(path.read_text())
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign)}


def parser_defaults() -> dict:
    return assignments(CONFIGS / "parser_defaults.py")["default_values"]


def sizes(values: str) -> tuple[int, ...]:
    return tuple(int(v) for v in values.split(","))


def expected_from(config: dict) -> tuple[dict, dict]:
    """What the config asks of our TrainConfig and constructor arguments."""
    train, model, config = {}, {}, dict(config)
    train["lr"] = config.pop("lr")
    assert config.pop("batch_size") == 16 and config.pop("sched") == "onecycle"
    reverse = config.pop("reverse_scheduled_sampling", 0)
    for key in ("r_sampling_step_1", "r_sampling_step_2", "r_exp_alpha"):
        config.pop(key, None) if not reverse else None
    if reverse:
        train.update(sampling="reverse", reverse_exp_alpha=config.pop("r_exp_alpha"),
                     reverse_steps=(config.pop("r_sampling_step_1"), config.pop("r_sampling_step_2")))
        config.pop("scheduled_sampling"), config.pop("sampling_stop_iter")
        config.pop("sampling_changing_rate")
    elif config.pop("scheduled_sampling", 0):
        stop, rate = config.pop("sampling_stop_iter"), config.pop("sampling_changing_rate")
        assert rate * stop == pytest.approx(1.0)  # our "openstl" schedule: rate = 1 / stop
        train.update(sampling="openstl", sampling_steps=stop)
    if "num_hidden" in config:
        hidden = sizes(config.pop("num_hidden"))
        assert len(set(hidden)) == 1
        model.update(hidden=hidden[0], layers=len(hidden))
    renames = {"patch_size": "patch", "window_size": "window", "num_heads": "heads",
               "depths_downsample": "depths_down", "depths_upsample": "depths_up"}
    for key in list(config):
        if key in INERT:
            value = config.pop(key)
            assert INERT[key] is None or value == INERT[key], (key, value)
        elif key in ("depths_downsample", "depths_upsample", "num_heads"):
            model[renames[key]] = sizes(config.pop(key))
        elif key == "layer_norm":
            model["layer_norm"] = bool(config.pop(key))
        else:
            model[renames.get(key, key)] = config.pop(key)
    return train, model


@pytest.mark.parametrize("name", sorted(CONFIG_OF))
def test_each_recipe_is_its_openstl_config(name):
    config = assignments(CONFIGS / f"{CONFIG_OF[name]}.py")
    train, model = expected_from(config)
    effective, recipe = PRESET.for_model(name), PRESET.recipe(name)
    if name in ("e3dlstm", "mau"):  # layer_norm 0: ours have no layer norm to switch off
        assert model.pop("layer_norm") is False
        assert "layer_norm" not in inspect.signature(models.get_spec(name).build).parameters
    if name == "swinlstm":  # the harness's SwinLSTM has patch 2 built in
        assert model.pop("patch") == 2
    if name == "phydnet":  # teacher forcing from the method (1 - 0.003 per epoch), not the config
        assert effective.train.sampling == "linear"
        assert effective.train.sampling_steps * 0.003 == pytest.approx(625, rel=1e-5)
    elif "sampling" not in train:
        train["sampling"] = "none"
    for key, value in train.items():
        assert getattr(effective.train, key) == value, key
    assert recipe.model == model
    assert f"configs/mmnist/{CONFIG_OF[name].replace('SimVP_', 'simvp/SimVP_')}.py" in recipe.source
    assert "c74deb5" in recipe.source


def test_every_recipe_argument_is_one_its_model_takes():
    for name, recipe in recipes.RECIPES.items():
        accepted = inspect.signature(models.get_spec(name).build).parameters
        assert set(recipe.model) <= set(accepted), name


def test_the_preset_holds_openstl_s_parser_defaults():
    defaults, cfg = parser_defaults(), PRESET.train
    assert (cfg.epochs, cfg.batch_size, cfg.optimizer, cfg.weight_decay, cfg.lr_schedule) == (
        defaults["epoch"], defaults["batch_size"], defaults["opt"], defaults["weight_decay"],
        defaults["sched"])
    assert defaults["final_div_factor"] == ONECYCLE_FINAL_DIV_FACTOR
    assert defaults["opt_betas"] is None and cfg.betas == (0.9, 0.999)  # torch's Adam defaults
    assert defaults["clip_grad"] is None and cfg.grad_clip is None
    assert cfg.steps_per_epoch * cfg.batch_size == 10_000  # OpenSTL's generated training epoch
    assert (cfg.loss, cfg.reverse_pass) == ("mse", False)
    assert cfg.warmup_loss_skip == 0  # MSE over every output against frames 1.. (ConvLSTM_Model)
    assert recipes.DEFAULT.train["lr"] == defaults["lr"]


def test_predformer_s_recipe_is_its_authors_config():
    config = assignments(CONFIGS / "PredFormer.py")["model_config"]
    recipe = PRESET.recipe("predformer")
    renamed = {"patch_size": "patch"}
    expected = {renamed.get(k, k): v for k, v in config.items()
                if k not in ("height", "width", "num_channels", "pre_seq", "after_seq")}
    assert recipe.model == expected
    train = PRESET.for_model("predformer").train
    assert (train.optimizer, train.lr, train.weight_decay) == ("adamw", 1e-3, 0.01)  # their script


def test_models_without_a_config_get_the_stated_default():
    for name in ("modernn", "saconvlstm", "persistence"):
        assert PRESET.recipe(name) is recipes.DEFAULT
    assert "no OpenSTL config" in recipes.DEFAULT.note


def test_user_options_win_over_a_recipe():
    preset = get_preset("openstl")
    preset.train_overrides = {"lr": 0.123}
    assert preset.for_model("convlstm").train.lr == 0.123
    assert get_preset("quick").for_model("convlstm").train == get_preset("quick").train


def test_list_models_shows_every_model_s_recipe_and_source(capsys):
    assert main(["--list-models", "--preset", "openstl"]) == 0
    out = capsys.readouterr().out
    for name in models.list_models():
        assert f"\n{name} (" in out
    assert "source: chengtan9907/OpenSTL configs/mmnist/PredRNNv2.py @ c74deb5" in out
    assert "sampling reverse, reverse_steps 25000,50000, reverse_exp_alpha 5000" in out
    assert "source: none (no published recipe)" in out  # modernn, saconvlstm, baselines
    assert main(["--list-models"]) == 0
    assert "source:" not in capsys.readouterr().out  # other presets: the plain table


def test_a_budget_with_the_onecycle_schedule_is_one_clear_error(capsys):
    assert main(["--preset", "openstl", "--models", "convlstm", "--budget", "steps=3"]) == 2
    assert "lr_schedule=onecycle" in capsys.readouterr().err
