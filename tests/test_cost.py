"""Cost columns against hand arithmetic, and the behaviour of the measurements."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import models
from bench.config import TrainConfig
from bench.cost.flops import rollout_macs
from bench.cost.profiling import measure_speed, parameter_counts
from models.base import RecurrentPredictor

DATA = SimpleNamespace(channels=1, height=64, width=64, in_len=10, out_len=10)


def test_convlstm_macs_match_hand_arithmetic():
    # patch 4: 16 channels at 16x16; hidden 8, 2 layers, filter 3; 19 calls for 10 -> 10
    model = models.create_model("convlstm", hidden=8, layers=2, filter_size=3)
    hw, k2, c, h = 16 * 16, 9, 16, 8
    layer0 = (c * 4 * h + h * 4 * h) * k2 * hw  # conv_x and conv_h of the first cell
    layer1 = (h * 4 * h + h * 4 * h) * k2 * hw
    readout = h * c * hw
    expected = 19 * (layer0 + layer1 + readout)
    counts = rollout_macs(model, (1, 64, 64), 10, 10)
    assert counts["gmacs_torch"] * 1e9 == pytest.approx(expected, rel=1e-9)
    assert counts["gmacs_fvcore"] * 1e9 == pytest.approx(expected, rel=1e-9)  # convs only
    assert counts["gmacs_fvcore_per_frame"] == pytest.approx(counts["gmacs_fvcore"] / 10)
    assert "aten::sigmoid" in counts["fvcore_skipped_ops"]  # listed, not hidden


def test_modernn_macs_match_reference_figures():
    """The authors' model (czh-98/MoDeRNN ``models/MoDeRNN.py``, commit 4db34f4) at their Moving
    MNIST setting (``scripts/train_mmnist.sh``): about 2.04 G multiply-adds per call, counted
    from its convolutions below, and 38.97 G from fvcore for the 10 -> 10 rollout."""
    model = models.create_model("modernn")
    hw, h = 16 * 16, 64
    gates = 2 * h * 4 * h * 9 * hw
    dcb = 5 * (9 + 25 + 49) * h * h * hw  # five rounds of the 3x3, 5x5 and 7x7 convolutions
    per_call = 4 * (gates + dcb) + 2 * 16 * h * hw  # four cells, embed and output 1x1 convs
    counts = rollout_macs(model, (1, 64, 64), 10, 10)
    assert per_call / 1e9 == pytest.approx(2.04, abs=0.01)
    assert counts["gmacs_torch"] * 1e9 == pytest.approx(19 * per_call, rel=1e-9)
    assert counts["gmacs_fvcore"] == pytest.approx(38.97, abs=0.01)


class WithUnusedLayer(RecurrentPredictor):
    def __init__(self):
        super().__init__()
        self.used = nn.Conv2d(1, 1, 3, padding=1)
        self.unused = nn.Conv2d(1, 4, 3, padding=1)  # 40 parameters the forward never touches

    def step(self, frame, state):
        return self.used(frame), None


def test_used_parameters_exclude_a_layer_the_forward_never_touches():
    counts = parameter_counts(WithUnusedLayer(), DATA)
    assert counts["params"] == 10 + 40
    assert counts["used_params"] == 10
    assert counts["unused_param_names"] == ["unused.weight", "unused.bias"]


def test_every_registered_default_uses_all_its_parameters():
    small = SimpleNamespace(channels=1, height=32, width=32, in_len=3, out_len=2)
    for name in ("modernn", "convlstm", "predrnn"):
        model = models.create_model(name, height=32, width=32, hidden=4, layers=2)
        counts = parameter_counts(model, small)
        assert counts["used_params"] == counts["params"], (name, counts["unused_param_names"])


def test_throughput_and_memory_are_positive_and_grow_with_batch():
    torch.manual_seed(0)
    model = models.create_model("convlstm", hidden=16, layers=2)
    cfg = TrainConfig(reverse_pass=False)
    small = measure_speed(model, DATA, cfg, torch.device("cpu"), batch_size=1, repeats=2)
    large = measure_speed(model, DATA, cfg, torch.device("cpu"), batch_size=16, repeats=2)
    for result in (small, large):
        for key in ("infer_seq_s", "infer_seq_s_b1", "train_seq_s", "matmul_peak_tflops",
                    "conv_peak_tflops", "peak_tflops"):
            assert result[key] > 0, key
        assert result["train_flops_per_seq"] > 0
        assert result["infer_ms_per_seq_b1"] == pytest.approx(1000 / result["infer_seq_s_b1"])
    # activations for 16 clips need more memory than for one (measured after the batch-1 run,
    # so memory the allocator kept from it must not hide the larger peak)
    assert large["train_peak_mb"] > 2 * small["train_peak_mb"] > 0
    assert large["infer_peak_mb"] > large["infer_peak_mb_b1"] > 0
