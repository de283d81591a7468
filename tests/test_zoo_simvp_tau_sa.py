"""SimVP (gSTA, IncepU), TAU and SA-ConvLSTM: parameter counts, shapes, TAU's DDR loss, gradients
and one structural check each. Generic checks over every model live in the shared zoo suite."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models._simvp_blocks import GatedAttention, IncepUTranslator, TemporalAttention, ddr_loss
from models.registry import create_model, get_spec
from models.saconvlstm import SelfAttentionMemory

NAMES = ["simvp", "simvp_incepu", "tau", "saconvlstm"]


def smoke(name: str, **overrides):
    args = {"channels": 1, "height": 32, "width": 32, **get_spec(name).preset_args["smoke"]}
    if name != "saconvlstm":  # SimVP and TAU are built for the data's in_len (smoke: 4)
        args["in_len"] = 4
    return create_model(name, **{**args, **overrides})


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Encoder 111,936 + decoder 369,857 at hid_S 64, N_S 4, 1 channel (models/simvp.py).
ENC_DEC = 111_936 + 369_857


def metaformer_translator(block) -> int:
    """Block(640), 1x1 640->512, 7 x block(512), 1x1 512->640 (in_len 10 x hid_S 64 = 640)."""
    return block(640) + (640 * 512 + 512) + 7 * block(512) + (512 * 640 + 640)


def incepu_translator() -> int:
    """Inception(c_in -> c_out) = 1x1 conv to 256 + 4 grouped branches (6,540 per out channel)."""
    def inception(c_in, c_out):
        return c_in * 256 + 256 + 6540 * c_out
    return (inception(640, 512) + 7 * inception(512, 512) + inception(512, 512)
            + 6 * inception(1024, 512) + inception(1024, 640))


def sa_convlstm() -> int:
    """4 layers x 64 hidden, filter 5, patch 4 (16 channels), 16 query/key channels."""
    conv = (16 + 64) * 256 * 25 + 256 + 3 * (128 * 256 * 25 + 256)
    sam = 3 * (64 * 16 + 16) + 2 * (64 * 64 + 64) + (128 * 128 + 128) + (192 * 192 + 192)
    return conv + 4 * sam + 64 * 16


@pytest.mark.parametrize("name, expected", [
    ("simvp", ENC_DEC + metaformer_translator(lambda d: 20 * d * d + 175 * d)),  # 46,769,665
    ("tau", ENC_DEC + metaformer_translator(lambda d: 19 * d * d + 206 * d)),  # 44,656,001
    ("simvp_incepu", ENC_DEC + incepu_translator()),  # 57,946,113
    ("saconvlstm", sa_convlstm()),  # 3,231,680
])
def test_default_parameter_counts(name, expected):
    pinned = {"simvp": 46_769_665, "tau": 44_656_001, "simvp_incepu": 57_946_113,
              "saconvlstm": 3_231_680}
    assert expected == pinned[name]
    with torch.device("meta"):
        model = create_model(name)
    assert count(model) == expected


QUICK = {"in_len": 10, "hid_S": 8, "hid_T": 16, "N_S": 2, "N_T": 2}
SMALL = {"simvp": QUICK, "simvp_incepu": QUICK, "tau": QUICK,
         "saconvlstm": {"hidden": 8, "layers": 2, "attn_channels": 4}}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("in_len, out_len, size", [(10, 10, 64), (4, 4, 32), (10, 15, 32),
                                                    (10, 3, 32)])
def test_output_shapes(name, in_len, out_len, size):
    args = dict(SMALL[name])
    if "in_len" in args:
        args["in_len"] = in_len
    model = create_model(name, channels=2, height=size, width=size, **args).eval()
    with torch.no_grad():
        pred = model(torch.rand(2, in_len, 2, size, size), in_len, out_len)
    assert pred.future.shape == (2, out_len, 2, size, size)
    assert pred.aux_loss is None


def test_simvp_out_len_beyond_in_len_feeds_predictions_back():
    """OpenSTL's rollout: frames in_len.. of the output are the network applied to its own
    first in_len predictions (then cropped); fewer frames are a crop of one pass."""
    model = smoke("simvp").eval()
    frames = torch.rand(2, 4, 1, 32, 32)
    with torch.no_grad():
        long = model(frames, 4, 7).future
        first = model.net(frames)
        assert torch.allclose(long[:, :4], first, atol=1e-6)
        assert torch.allclose(long[:, 4:], model.net(first)[:, :3], atol=1e-6)
        assert torch.allclose(model(frames, 4, 2).future, first[:, :2], atol=1e-6)


def test_tau_aux_loss_in_training_only():
    model = smoke("tau")
    frames = torch.rand(2, 8, 1, 32, 32)
    model.train()
    aux = model(frames, 4, 4).aux_loss
    assert aux is not None and aux.dim() == 0 and torch.isfinite(aux) and aux > 0
    assert model(frames[:, :4], 4, 4).aux_loss is None, "no targets, no DDR"
    model.eval()
    assert model(frames, 4, 4).aux_loss is None


def test_tau_future_does_not_read_the_targets_in_training():
    model = smoke("tau").train()
    frames = torch.rand(2, 8, 1, 32, 32)
    changed = frames.clone()
    changed[:, 4:] = torch.rand_like(changed[:, 4:])
    first, second = model(frames, 4, 4), model(changed, 4, 4)
    assert torch.equal(first.future, second.future)
    assert not torch.equal(first.aux_loss, second.aux_loss)


def test_ddr_is_alpha_times_kl_between_softmaxed_frame_differences():
    """Softmax over each difference's C*H*W values (temperature 0.1), KL(pred || target) per
    frame pair, averaged over the batch, the pairs and the C*H*W positions (OpenSTL's mean)."""
    torch.manual_seed(0)
    pred, target = torch.rand(3, 5, 2, 6, 6), torch.rand(3, 5, 2, 6, 6)
    p = F.softmax(pred.diff(dim=1).flatten(2) / 0.1, dim=-1)
    log_q = F.log_softmax(target.diff(dim=1).flatten(2) / 0.1, dim=-1)
    kl = (p * (p.log() - log_q)).sum(-1)  # [B, T - 1]
    assert torch.allclose(ddr_loss(pred, target), kl.mean() / (2 * 6 * 6), rtol=1e-4)
    assert ddr_loss(target + 0.3, target).abs() < 1e-6, "same frame differences: no penalty"
    assert ddr_loss(pred[:, :2], target[:, :2]) == 0, "OpenSTL: zero for <= 2 frames"
    model = smoke("tau", alpha=0.25).train()
    frames = torch.rand(2, 8, 1, 32, 32)
    out = model(frames, 4, 4)
    assert torch.allclose(out.aux_loss, 0.25 * ddr_loss(out.future, frames[:, 4:]))


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = smoke(name).train()
    pred = model(torch.rand(2, 8, 1, 32, 32), 4, 4)
    loss = pred.future.square().mean()
    if pred.aux_loss is not None:
        loss = loss + pred.aux_loss
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_translators_are_the_named_ones():
    kinds = {}
    for name in ["simvp", "simvp_incepu", "tau"]:
        hid = smoke(name).net.hid
        kinds[name] = {type(m) for m in hid.modules()}
    assert GatedAttention in kinds["simvp"] and TemporalAttention not in kinds["simvp"]
    assert TemporalAttention in kinds["tau"] and GatedAttention not in kinds["tau"]
    assert IncepUTranslator in kinds["simvp_incepu"]
    assert not kinds["simvp_incepu"] & {GatedAttention, TemporalAttention}


@pytest.mark.parametrize("name", ["simvp", "simvp_incepu", "tau"])
def test_translator_mixes_time_but_not_the_batch(name):
    """Time is folded into channels: every predicted frame depends on the first input frame,
    and no sample depends on another (a wrong reshape would mix them)."""
    model = smoke(name).eval()
    frames = torch.rand(2, 4, 1, 32, 32)
    with torch.no_grad():
        before = model(frames, 4, 4).future
        for sample in (0, 1):
            changed = frames.clone()
            changed[sample, 0] = torch.rand_like(changed[sample, 0])
            after = model(changed, 4, 4).future
            assert all(not torch.allclose(before[sample, t], after[sample, t]) for t in range(4))
            assert torch.equal(before[1 - sample], after[1 - sample])


def test_self_attention_memory_attends_over_all_positions():
    """One SAM step: changing the memory at one corner changes the output at the far corner
    (only 1x1 convolutions, so only the attention can carry it)."""
    torch.manual_seed(0)
    sam = SelfAttentionMemory(hidden=4, attn_channels=2)
    h, m = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    changed = m.clone()
    changed[..., 0, 0] += 5.0
    with torch.no_grad():
        out, out2 = sam(h, m)[0], sam(h, changed)[0]
    assert not torch.allclose(out[..., 7, 7], out2[..., 7, 7])
    q = sam.query(h).flatten(2)
    weights = torch.softmax(q.transpose(1, 2) @ sam.key_h(h).flatten(2), dim=-1)
    assert weights.shape == (1, 64, 64)


@pytest.mark.parametrize("name, args, needle", [
    ("simvp", {"N_S": 3}, "N_S"),
    ("tau", {"hid_S": 7}, "hid_S"),
    ("simvp", {"height": 30}, "30"),
    ("tau", {"alpha": -1.0}, "alpha"),
    ("simvp", {"mlp_ratio": 1}, "mlp_ratio"),
    ("simvp_incepu", {"N_T": 1}, "N_T"),
    ("saconvlstm", {"attn_channels": 0}, "attn_channels"),
    ("saconvlstm", {"patch": 3}, "patch size 3"),
])
def test_bad_arguments_are_named(name, args, needle):
    with pytest.raises(ValueError, match=needle):
        create_model(name, **args)


def test_simvp_reads_a_window_of_the_in_len_it_was_built_for():
    """Built for 4 frames: 6 given -> the last 4; 2 given -> left-padded with the first."""
    model = smoke("simvp").eval()
    frames = torch.rand(2, 6, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(frames, 6, 4).future, model.net(frames[:, 2:6]))
        padded = torch.cat([frames[:, :1], frames[:, :1], frames[:, :2]], dim=1)
        assert torch.equal(model(frames, 2, 4).future, model.net(padded))
