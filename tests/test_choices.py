"""One table of closed option sets (bench.config.CHOICES) behind every "accepted: ..." message."""
import dataclasses

import pytest
import torch

from bench.config import CHOICES, TrainConfig, choice_error
from bench.grid.checks import check_train_overrides
from bench.runtime.precision import AMP_MODES, autocast
from bench.train.loss import sequence_loss
from bench.train.sampling import sampling_eta
from models import Prediction


def test_every_closed_option_is_a_string_option_with_an_accepted_default():
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for option, values in CHOICES.items():
        assert fields[option].type in ("str", str)
        assert fields[option].default in values


def test_amp_modes_have_one_definition():
    assert CHOICES["amp"] is AMP_MODES


@pytest.mark.parametrize("option", sorted(CHOICES))
def test_set_names_the_accepted_values_from_the_table(option):
    with pytest.raises(ValueError) as error:
        check_train_overrides({option: "bogus"})
    assert str(error.value) == f"--set {option}=bogus: accepted: {', '.join(CHOICES[option])}"


def test_messages_of_the_loop_read_the_table():
    assert str(choice_error("optimizer", "sgd")) == "unknown optimizer 'sgd'; accepted: adamw, adam"
    assert str(choice_error("lr_schedule", "step")) == \
        "unknown lr_schedule 'step'; accepted: cosine, constant, onecycle"
    with pytest.raises(ValueError, match=r"^unknown sampling 'x'; accepted: linear, reverse, none, openstl$"):
        sampling_eta(0, TrainConfig(sampling="x"))
    frames = torch.zeros(1, 4, 1, 2, 2)
    pred = Prediction(future=torch.zeros(1, 2, 1, 2, 2))
    with pytest.raises(ValueError, match=r"^unknown loss 'l2'; accepted: mse\+l1, mse$"):
        sequence_loss(pred, frames, 2, TrainConfig(loss="l2"))
    with pytest.raises(ValueError, match=r"^unknown amp mode 'fp8'; accepted: none, bf16, fp16$"):
        autocast(torch.device("cpu"), "fp8")
