"""The harness's training step against one iteration of the MoDeRNN authors' trainer.

The fixtures (tests/fixtures/modernn_train_step.npz in float64, ``_f32.npz`` in float32; their
README says how they were made) hold the authors' state dict before and after one iteration of
``FPTrainer.optimize_parameters`` (czh-98/MoDeRNN 4db34f4): a step on the clip and one on the
clip reversed, each ``MSEL1Loss(size_average=False) / 2`` and AdamW (lr 1e-3, betas (0.9,
0.999), weight decay 0.01), with the scheduled-sampling mask they drew. We load ``initial`` into
the registered ``modernn`` (the patch wrapper included), run ``Trainer.training_step`` (the one
the loop runs) at the paper preset's settings with that mask, and compare with ``after``.

Patch order: the authors' ``reshape_patch`` puts the pixel (dy, dx) of a p x p patch in channel
``dx * p + dy``, ours (models/patch.py) in ``dy * p + dx``. Either is a fixed permutation of the
channels, which the 1x1 ``embed`` (its input channels) and ``output`` (its output channels)
absorb exactly; ``authors_channels`` is that permutation, and the check first confirms that our
patches of ``frames``, permuted by it, are the authors' ``patched`` bit for bit.

Bounds. float64: every tensor within 1e-12 of ``after`` relative to its largest |value|, each
loss within 1e-12 relative (on the machine that made the file our step matched it exactly).
float32: AdamW's first step moves every weight by about lr times the sign of its gradient, so a
weight whose gradient is near zero moves by up to 2 lr the other way when rounding flips that
sign, and the second step, whose gradients see the flipped weights, shifts many others by a
fraction of lr. Measured against the float32 file on a 2-core AVX-512 AMD EPYC (our step in
float64 from its float32 weights, and our float32 step with one ulp of noise on every weight and
pixel, 3 draws; the plain float32 step differs by 3.4e-5 at most): max |diff| 2.4e-3, 99th
percentile of |diff| 9.1e-5 (0.09 lr), loss_1 7.5e-8 and loss_2 1.1e-5 relative. The float32 bound: every
element within 4 lr, the 99th percentile of |diff| within lr / 2, loss_1 within 1e-5 and loss_2
within 1e-4 relative. A wrong loss, mask, patch order or learning rate moves the losses by
percents or most weights by lr; weight decay shows only in the float64 file (in float32 its
1e-5 relative change per step is below the rounding of the second step).
"""
from __future__ import annotations

import ast
import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from models import fast
from models.modernn import modernn
from models.patch import patchify

from ..config import TrainConfig, get_preset
from ..train.loop import Trainer
from ..train.loss import sequence_loss
from .cases.modernn import authors_name
from .golden import FIXTURES

KIND = "modernn-train-step/"
FILES = {torch.float64: "modernn_train_step.npz", torch.float32: "modernn_train_step_f32.npz"}
IN_LEN = OUT_LEN = 10


@dataclass(frozen=True)
class TrainStepFixture:
    initial: dict[str, np.ndarray]  # the authors' names
    after: dict[str, np.ndarray]
    frames: torch.Tensor  # [B, 20, C, H, W]
    patched: torch.Tensor  # [B, 20, C*p*p, H/p, W/p], the authors' channel order
    truth_mask: torch.Tensor  # [B, 9], our layout (models/base.py)
    losses: tuple[float, float]  # loss_1, loss_2
    config: dict

    @property
    def dtype(self) -> torch.dtype:
        return self.frames.dtype


def is_train_step(path: str | Path) -> bool:
    data = np.load(FIXTURES / path)
    return "kind" in data.files and str(data["kind"]).startswith(KIND)


def load_train_step(path: str | Path) -> TrainStepFixture:
    data = np.load(FIXTURES / path)
    if not is_train_step(path):
        raise ValueError(f"{path}: not a train-step fixture (its kind must start with {KIND!r})")

    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}

    true_token = torch.from_numpy(data["true_token"])  # [t, b]: call 10 + t of sample b
    return TrainStepFixture(
        group("initial/"), group("after/"), torch.from_numpy(data["frames"]),
        torch.from_numpy(data["patched"]), true_token.T.contiguous(),
        (float(data["loss_1"]), float(data["loss_2"])), ast.literal_eval(str(data["config"])))


def authors_channels(patch: int) -> torch.Tensor:
    """``perm`` with our channel j = the authors' channel ``perm[j]`` (one frame channel)."""
    return torch.arange(patch * patch).view(patch, patch).T.reshape(-1)


def build_model(config: dict) -> torch.nn.Module:
    channels = config["input_chans"] // config["patch"] ** 2
    if channels != 1:
        raise ValueError(f"input_chans {config['input_chans']} at patch {config['patch']}: only "
                         "one frame channel is supported (the authors' order is known for it)")
    return modernn(channels=1, height=config["size"], width=config["size"], patch=config["patch"],
                   hidden=config["hidden"], layers=config["layers"], filter_size=config["filter"])


def our_state(core: torch.nn.Module, weights: dict[str, np.ndarray], patch: int) -> dict:
    """The authors' tensors under our names, embed's inputs and output's outputs permuted."""
    perm = authors_channels(patch)
    state = {}
    for name, _ in core.named_parameters():
        theirs = authors_name(name)
        if theirs not in weights:
            raise ValueError(f"the fixture has no {theirs!r} (our {name})")
        value = torch.from_numpy(weights[theirs])
        state[name] = value[:, perm] if name == "embed.weight" else \
            value[perm] if name.startswith("output.") else value
    return state


def train_config(config: dict) -> TrainConfig:
    """The paper preset's training options at the file's optimizer settings (the same there)."""
    return dataclasses.replace(get_preset("paper").train, lr=config["lr"],
                               betas=tuple(config["betas"]), weight_decay=config["weight_decay"])


def run_train_step(fx: TrainStepFixture, device: torch.device | str = "cpu",
                   fast_paths: tuple[str, ...] = (), cfg: TrainConfig | None = None):
    """Our iteration from ``initial`` with ``fast_paths`` on (models/fast.py): (our weights
    after it, under our names; (loss_1, loss_2))."""
    device = torch.device(device)
    cfg = train_config(fx.config) if cfg is None else cfg
    model = build_model(fx.config).to(fx.dtype)
    model.core.load_state_dict(our_state(model.core, fx.initial, fx.config["patch"]), strict=True)
    fast.enable(model, fast_paths)
    frames, mask = fx.frames.to(device), fx.truth_mask.to(device)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(model, SimpleNamespace(in_len=IN_LEN, out_len=OUT_LEN), cfg, device, 0,
                          Path(scratch))
        model.train()
        with torch.no_grad():  # the first pass's loss, at the same weights
            first = sequence_loss(model(frames, IN_LEN, OUT_LEN, mask), frames, IN_LEN, cfg).item()
        mean = trainer.training_step(frames, 0, torch.Generator(), mask=mask).item()
    second = 2 * mean - first if cfg.reverse_pass else float("nan")
    return {n: p.detach().cpu() for n, p in model.core.named_parameters()}, (first, second)


def patch_order_matches(fx: TrainStepFixture) -> bool:
    """Our patches of the frames, in the authors' channel order, are the authors' bit for bit."""
    patch = fx.config["patch"]
    return torch.equal(patchify(fx.frames, patch)[:, :, authors_channels(patch)], fx.patched)


@dataclass(frozen=True)
class Comparison:
    """Measured differences, each with its bound (``terms``: label -> (measured, bound))."""

    terms: dict[str, tuple[float, float]]
    finite: bool

    @property
    def ratio(self) -> float:
        """The worst measured / bound (NaN counts as a failure)."""
        ratios = [m / b if m == m else float("inf") for m, b in self.terms.values()]
        return max(ratios) if self.finite else float("inf")

    def describe(self, which: int) -> str:
        return ", ".join(f"{label} {pair[which]:.1e}" for label, pair in self.terms.items())


def compare_step(fx: TrainStepFixture, ours: dict[str, torch.Tensor],
                 losses: tuple[float, float]) -> Comparison:
    """Our weights and losses against ``after`` and the authors' losses, within the bound of
    the file's precision (the module docstring)."""
    theirs = our_state_after(fx)
    loss_rel = [abs(a - b) / abs(b) for a, b in zip(losses, fx.losses, strict=True)]
    finite = all(torch.isfinite(t).all() for t in ours.values())
    if fx.dtype == torch.float64:
        rel = max(((ours[n] - t).abs().max() / t.abs().max()).item() for n, t in theirs.items())
        terms = {"weights rel.": (rel, 1e-12), "loss_1 rel.": (loss_rel[0], 1e-12),
                 "loss_2 rel.": (loss_rel[1], 1e-12)}
    else:
        lr = fx.config["lr"]
        diff = torch.cat([(ours[n].double() - t.double()).abs().flatten() for n, t in theirs.items()])
        terms = {"weights max": (diff.max().item(), 4 * lr),
                 "99th pct": (float(np.percentile(diff.numpy(), 99)), lr / 2),
                 "loss_1 rel.": (loss_rel[0], 1e-5), "loss_2 rel.": (loss_rel[1], 1e-4)}
    return Comparison(terms, bool(finite))


def our_state_after(fx: TrainStepFixture) -> dict[str, torch.Tensor]:
    core = build_model(fx.config).core
    return our_state(core, fx.after, fx.config["patch"])
