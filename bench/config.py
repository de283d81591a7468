"""Typed run configuration, the closed sets of values of its string options, the presets, and the
hash that identifies a configuration."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .recipes import Recipe
from .recipes import openstl as openstl_recipes
from .runtime.choices import unknown_choice
from .runtime.precision import AMP_MODES

# The closed sets of values of TrainConfig's string options: the one table that validation
# (``--set``), the loop and every "accepted: ..." message read.
CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adamw", "adam"),
    # cosine: stepped per epoch, down to min_lr | onecycle: torch's OneCycleLR stepped per
    # iteration, max_lr = lr over epochs x steps_per_epoch, final_div_factor 1e4 (OpenSTL's)
    "lr_schedule": ("cosine", "constant", "onecycle"),
    # mse+l1: (sum sq. error + sum abs. error) / 4, as the authors; mse: per-element mean
    "loss": ("mse+l1", "mse"),
    # linear: scheduled sampling, eta 1 -> 0 over sampling_steps | reverse: PredRNN-V2's reverse
    # scheduled sampling (also inside the input window) | none: always the model's own output |
    # openstl: OpenSTL's linear schedule, eta lowered before each iteration's draws (1 - (i + 1)
    # / sampling_steps at iteration i)
    "sampling": ("linear", "reverse", "none", "openstl"),
    "amp": AMP_MODES,  # fp16 on CUDA only; defined beside autocast (bench.runtime.precision)
    # reduce-overhead: CUDA graphs
    "compile_mode": ("default", "reduce-overhead", "max-autotune"),
}


def choice_error(option: str, value: object) -> ValueError:
    """The error (to raise) for ``value`` outside ``CHOICES[option]``: ``unknown loss 'l2';
    accepted: mse+l1, mse``."""
    return unknown_choice(option, value, CHOICES[option])


@dataclass
class TrainConfig:
    """The shared training loop's options. Defaults are the MoDeRNN authors' protocol. Each
    string option (optimizer, lr_schedule, loss, sampling, amp, compile_mode) takes one of its
    ``CHOICES``, which also says what the values mean."""

    epochs: int = 400
    steps_per_epoch: int = 200
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    lr_schedule: str = "cosine"
    min_lr: float = 1e-6
    loss: str = "mse+l1"
    reverse_pass: bool = True  # a second step on the same clips reversed in time
    sampling: str = "linear"
    sampling_steps: int = 40_000  # iterations over which eta falls from 1 to 0
    reverse_steps: tuple[int, int] = (25_000, 50_000)  # reverse sampling's two phase boundaries
    reverse_exp_alpha: float = 5_000.0  # time constant of reverse sampling's input-window ramp
    warmup_loss_skip: int | None = 1  # compare warm-up outputs from this call on; None: future only
    grad_clip: float | None = None  # max gradient norm
    amp: str = "none"
    eval_batch_size: int = 32
    checkpoint_every: int = 1  # epochs
    # also checkpoint (last.pt) every this many iterations, mid-epoch; 0: at epoch ends only
    checkpoint_every_steps: int = 0
    # also checkpoint when this many seconds of training passed since the last one; 0: never
    checkpoint_every_seconds: float = 120.0
    # iterations between reads of the training loss on the host (the non-finite check and the
    # progress bar); between them the loop never waits for the device
    sync_every: int = 25
    compile: bool = False  # torch.compile what a model runs per step (a recurrent cell's step)
    compile_mode: str = "default"
    tf32: bool = True  # CUDA: TensorFloat-32 for float32 matmuls and convolutions
    # CUDA: capture the whole iteration (both passes, their backward and optimizer steps) once
    # per cell in a CUDA graph and replay it (bench.train.graph); what cannot be captured runs
    # eager, with one log line saying why (bench.runtime.graphs)
    cuda_graph: bool = False
    # fast paths (models/fast.py): exact reformulations, switched on in the models that offer
    # them; in the config hash only when on (the hash of every other configuration is unchanged)
    fused_norm: bool = False  # LayerNorms over whole maps as a group norm of one group + affine
    fused_convs: bool = False  # several convolutions of one input (or same-shape inputs) as one


# How often to checkpoint or read the loss changes no result: such options stay out of the hash
# that identifies a configuration (so changing them resumes the same cell).
OPERATIONAL_OPTIONS = ("checkpoint_every", "checkpoint_every_steps", "checkpoint_every_seconds",
                       "sync_every")
# Options added after records existed, hashed only when they differ from their default (False),
# so that configurations without them keep the hash they always had.
HASHED_WHEN_ON = ("cuda_graph", "fused_norm", "fused_convs")


def hashed_train_options(train: TrainConfig) -> dict[str, Any]:
    """The TrainConfig options that decide the numbers, as a record's ``config.train`` holds them:
    all but the operational ones, and each of ``HASHED_WHEN_ON`` only when on."""
    return {k: v for k, v in dataclasses.asdict(train).items()
            if k not in OPERATIONAL_OPTIONS and not (k in HASHED_WHEN_ON and not v)}


@dataclass
class DataConfig:
    dataset: str = "mmnist"
    in_len: int = 10
    out_len: int = 10
    frame_size: int = 64
    digits_per_clip: int = 2
    n_val: int = 1000
    n_test: int = 10000


@dataclass
class Preset:
    name: str
    description: str
    train: TrainConfig
    data: DataConfig
    # Applied to every model whose constructor takes the argument (so registry additions scale too).
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # Timed repeats behind each throughput median. Profiling costs about repeats + 2 training
    # iterations (warm-up, memory), so short presets use fewer: a few percent of their training.
    profile_repeats: int = 5
    # Per-model recipes (bench.recipes): a model's own training options and sizes on top of the
    # preset's; ``default_recipe`` for a model the table does not name. None: one configuration
    # for every model.
    recipes: dict[str, Recipe] | None = None
    default_recipe: Recipe | None = None
    # The user's training options (--set, --epochs, ...), which win over a recipe's.
    train_overrides: dict[str, Any] = field(default_factory=dict)
    applied_recipe: Recipe | None = None  # set by for_model: the recipe this preset applies

    def recipe(self, model: str) -> Recipe | None:
        """``model``'s recipe, or None when the preset holds none."""
        if self.recipes is None:
            return None
        return self.recipes.get(model, self.default_recipe)

    def for_model(self, model: str) -> Preset:
        """The preset as ``model`` trains under it: its recipe's training options (then the
        user's) and sizes applied; the preset itself when it holds no recipes."""
        recipe = self.recipe(model)
        if recipe is None:
            return self
        train = apply_overrides(apply_overrides(self.train, recipe.train), self.train_overrides)
        return dataclasses.replace(self, train=train, recipes=None, default_recipe=None,
                                   model_overrides={**self.model_overrides, **recipe.model},
                                   applied_recipe=recipe)


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper",
        "the MoDeRNN authors' protocol at the reference model configurations (for a GPU)",
        TrainConfig(),
        DataConfig(),
    ),
    "quick": Preset(
        "quick",
        "minutes for four models on a CPU (the run prints its estimate): hidden 32 and 2 "
        "layers, 150 iterations of batch 8 (300 optimizer steps with the reversed pass), 64 "
        "validation and 512 test clips; "
        "the authors' optimizer, cosine schedule, reversed pass and scheduled sampling (eta reaches "
        "0 at iteration 75), but a per-pixel MSE loss: in so few steps the authors' summed L1 term "
        "holds models near the blank-frame prediction",
        TrainConfig(
            epochs=3, steps_per_epoch=50, batch_size=8, reverse_pass=True, loss="mse",
            sampling_steps=75, eval_batch_size=32,
        ),
        DataConfig(n_val=64, n_test=512),
        {"hidden": 32, "layers": 2},
        profile_repeats=3,
    ),
    "smoke": Preset(
        "smoke",
        "seconds, for tests: tiny models, 32x32 frames, 4 -> 4 frames, a few steps",
        TrainConfig(
            epochs=2, steps_per_epoch=3, batch_size=2, sampling_steps=4, eval_batch_size=8,
        ),
        DataConfig(in_len=4, out_len=4, frame_size=32, n_val=4, n_test=8),
        {"hidden": 8, "layers": 1},
        profile_repeats=2,
    ),
    "openstl": Preset(
        "openstl",
        "OpenSTL's Moving MNIST protocol, per model (configs/mmnist/<Method>.py at c74deb5 with "
        "its parser's defaults): Adam, weight decay 0, OneCycle per iteration, 200 epochs of "
        "625 iterations at batch 16, per-pixel MSE, one pass, each config's lr, scheduled "
        "sampling and sizes; checkpoints selected on our validation split (OpenSTL selects on "
        "the test set)",
        TrainConfig(
            epochs=200, steps_per_epoch=openstl_recipes.ITERATIONS_PER_EPOCH, batch_size=16,
            optimizer="adam", weight_decay=0.0, lr_schedule="onecycle", loss="mse",
            reverse_pass=False, eval_batch_size=16,
            # OpenSTL's recurrent models compare every output with frames 1.. (e.g.
            # openstl/models/convlstm_model.py line 83): the warm-up from its first call
            warmup_loss_skip=0,
        ),
        DataConfig(),
        recipes=openstl_recipes.RECIPES,
        default_recipe=openstl_recipes.DEFAULT,
    ),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return dataclasses.replace(
        PRESETS[name],
        train=dataclasses.replace(PRESETS[name].train),
        data=dataclasses.replace(PRESETS[name].data),
        model_overrides=dict(PRESETS[name].model_overrides),
        train_overrides=dict(PRESETS[name].train_overrides),
    )


def apply_overrides(obj, overrides: dict[str, Any]):
    """A copy of dataclass ``obj`` with fields replaced; unknown fields are a clear error."""
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key in overrides:
        if key not in names:
            raise ValueError(
                f"unknown option {key!r} for {type(obj).__name__}; known: {', '.join(names)}"
            )
    return dataclasses.replace(obj, **overrides)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with value parsed as JSON when it can be (numbers, true/false, lists)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"malformed override {text!r}; expected key=value, e.g. lr=0.0005")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def check_finite(option: str, value: Any) -> Any:
    """``value`` unchanged when every number in it (nested in lists too, as betas) is finite;
    else a ValueError naming ``option``. A NaN or infinite option would train and then fail to
    be recorded (JSON has no NaN), or silently disable what it sets (a NaN period)."""
    numbers = value if isinstance(value, (list, tuple)) else [value]
    for number in numbers:
        if isinstance(number, (list, tuple)):
            check_finite(option, number)
        elif isinstance(number, float) and not math.isfinite(number):
            shown = json.dumps(value) if not isinstance(value, str) else value
            raise ValueError(f"{option}={shown}: {number} is not a finite number (a number "
                             "beyond 1.8e308, such as 1e400, reads as Infinity); accepted: "
                             "finite numbers")
    return value


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able configuration."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
