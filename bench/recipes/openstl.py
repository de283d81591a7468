"""The ``openstl`` preset's recipes: each model trained as OpenSTL's Moving MNIST config for it
says (chengtan9907/OpenSTL at commit c74deb5, ``configs/mmnist/<Method>.py``), with the defaults
of ``openstl/utils/parser.py`` ``default_parser()`` (lines 127-162) for what a config leaves out:
Adam, weight decay 0, OneCycle stepped per iteration (``openstl/core/optim_scheduler.py`` lines
130-136: max_lr = lr, total_steps = epochs x iterations, final_div_factor 1e4), 200 epochs,
batch 16. The preset itself (bench.config) holds those shared values; a recipe holds what the
config sets: the lr, the scheduled-sampling settings and the model's sizes.

OpenSTL's scheduled sampling (``openstl/utils/predrnn_utils.py`` ``schedule_sampling``, lines
61-74) lowers eta by ``sampling_changing_rate`` (2e-5) before each iteration's draws until
``sampling_stop_iter`` (50,000), then 0: eta = 1 - (i + 1) / 50,000 at iteration i, our
``sampling="openstl"`` with ``sampling_steps`` 50,000 (the configs' rate is 1 / stop). Reverse
scheduled sampling (``reserve_schedule_sampling_exp``, lines 6-28) is our ``sampling="reverse"``
with ``reverse_steps`` (r_sampling_step_1, r_sampling_step_2) and ``reverse_exp_alpha``.
"""
from __future__ import annotations

from . import Recipe

REPO, COMMIT = "chengtan9907/OpenSTL", "c74deb5"
# The configs' scheduled-sampling settings: stop at iteration 50,000, eta falling 2e-5 a step.
SAMPLING_STOP_ITER, SAMPLING_CHANGING_RATE = 50_000, 0.00002
RNN_SIZES = {"hidden": 128, "layers": 4, "filter_size": 5, "patch": 4}
SIMVP_SIZES = {"hid_S": 64, "hid_T": 512, "N_S": 4, "N_T": 8, "spatio_kernel_enc": 3,
               "spatio_kernel_dec": 3}
# PhyDNet's method (openstl/methods/phydnet.py line 41): teacher forcing ratio 1 - 0.003 x epoch
PHYDNET_RATIO_PER_EPOCH = 0.003
ITERATIONS_PER_EPOCH = 625  # 10,000 generated training sequences / batch 16


def config_source(path: str, lines: int) -> str:
    return f"{REPO} {path} @ {COMMIT}, lines 1-{lines}"


def rnn(path: str, lines: int, lr: float, note: str = "", **model) -> Recipe:
    """A recurrent model's recipe: the config's lr, its linear scheduled sampling, its sizes."""
    return Recipe(train={"lr": lr, "sampling": "openstl", "sampling_steps": SAMPLING_STOP_ITER},
                  model=model, source=config_source(path, lines), note=note)


def feed_forward(path: str, lines: int, lr: float, note: str = "", **model) -> Recipe:
    """A model predicting every frame at once: no scheduled sampling (nothing to feed)."""
    return Recipe(train={"lr": lr, "sampling": "none"}, model=model,
                  source=config_source(path, lines), note=note)


RECIPES: dict[str, Recipe] = {
    "convlstm": rnn("configs/mmnist/ConvLSTM.py", 21, 5e-4, layer_norm=False, **RNN_SIZES),
    "predrnn": rnn("configs/mmnist/PredRNN.py", 21, 5e-4, layer_norm=False, **RNN_SIZES),
    "predrnnpp": rnn("configs/mmnist/PredRNNpp.py", 21, 1e-4, layer_norm=False, **RNN_SIZES),
    "mim": rnn("configs/mmnist/MIM.py", 23, 5e-4, layer_norm=False, **RNN_SIZES),
    "predrnnv2": Recipe(
        train={"lr": 5e-4, "sampling": "reverse", "reverse_steps": (25_000, 50_000),
               "reverse_exp_alpha": 5_000.0},
        model={**RNN_SIZES, "layer_norm": False, "decouple_beta": 0.1},
        source=config_source("configs/mmnist/PredRNNv2.py", 22)),
    "e3dlstm": rnn("configs/mmnist/E3DLSTM.py", 21, 1e-4, **RNN_SIZES, note=(
        "the harness's E3D-LSTM (memory flowing between layers and steps); "
        "--model-arg memory_flow=false --model-arg openstl_compat=true builds OpenSTL's")),
    "mau": rnn("configs/mmnist/MAU.py", 20, 1e-3, hidden=64, layers=4, filter_size=5, patch=1,
               sr_size=4, tau=5, note=(
                   "the config's scheduled sampling; OpenSTL's MAU method drops the lowered eta "
                   "(openstl/methods/mau.py line 40), so its runs keep eta at 0.99998 until "
                   "iteration 50,000")),
    "phydnet": Recipe(
        train={"lr": 1e-3, "sampling": "linear", "sampling_steps": round(
            ITERATIONS_PER_EPOCH / PHYDNET_RATIO_PER_EPOCH)},
        model={"patch": 4}, source=config_source("configs/mmnist/PhyDNet.py", 7),
        note="teacher forcing as openstl/methods/phydnet.py line 41 (1 - 0.003 per epoch of 625 "
             "iterations), drawn per clip and step each iteration (OpenSTL: once per batch, "
             "lowered once per epoch)"),
    "simvp": feed_forward("configs/mmnist/simvp/SimVP_gSTA.py", 14, 1e-3, drop_path=0.0,
                          **SIMVP_SIZES),
    "simvp_incepu": feed_forward("configs/mmnist/simvp/SimVP_IncepU.py", 13, 1e-3,
                                 **SIMVP_SIZES),
    "tau": feed_forward("configs/mmnist/TAU.py", 15, 1e-3, drop_path=0.0, alpha=0.1,
                        **SIMVP_SIZES),
    "swinlstm": Recipe(
        train={"lr": 1e-4, "sampling": "none"},
        model={"embed_dim": 128, "depths_down": (2, 6), "depths_up": (6, 2), "heads": (4, 8),
               "window": 4},
        source=config_source("configs/mmnist/SwinLSTM-D.py", 12),
        note="patch 2 is the harness's fixed SwinLSTM patch; OpenSTL feeds the model's own "
             "outputs after the input window (sampling none)"),
    "predformer": Recipe(
        train={"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "sampling": "none"},
        model={"patch": 8, "dim": 256, "heads": 8, "dim_head": 32, "scale_dim": 4, "depth": 1,
               "Ndepth": 6, "dropout": 0.0, "attn_dropout": 0.0, "drop_path": 0.0},
        source="yyyujintang/PredFormer configs/mmnist/PredFormer.py @ b73c7ae, lines 1-25; "
               "scripts/mmnist/mm_PredFormer_TSST_train.sh @ b73c7ae, lines 5-17",
        note="OpenSTL has no PredFormer config: the authors' (their OpenSTL fork's OneCycle, "
             "AdamW lr 1e-3, weight decay 0.01, batch 16) at the preset's 200 epochs; their "
             "script trains 2,000; Ndepth 6 as their config (25.3M parameters, their Table 2 "
             "row), though the script's run name says depth8"),
}

# Models with no OpenSTL config (modernn, saconvlstm; the untrained baselines): OpenSTL's
# defaults (parser lr 1e-3), the RNN configs' scheduled sampling, the model's default sizes.
DEFAULT = Recipe(
    train={"lr": 1e-3, "sampling": "openstl", "sampling_steps": SAMPLING_STOP_ITER},
    note="no OpenSTL config: OpenSTL's defaults (openstl/utils/parser.py @ c74deb5, lines "
         "127-162: Adam, lr 1e-3, weight decay 0, OneCycle, 200 epochs, batch 16), the RNN "
         "configs' scheduled sampling (50,000 iterations), the model's default sizes")
