import pytest
import torch

import models
from models.patch import patchify, unpatchify

SMALL = {"hidden": 8, "layers": 2}


@pytest.mark.parametrize("shape,patch", [((2, 3, 1, 64, 64), 4), ((1, 2, 3, 12, 20), 2), ((4, 5, 8), 1)])
def test_patchify_round_trip(shape, patch):
    frames = torch.rand(shape)
    patched = patchify(frames, patch)
    *lead, c, h, w = shape
    assert patched.shape == (*lead, c * patch * patch, h // patch, w // patch)
    assert torch.equal(unpatchify(patched, patch), frames)


def test_patchify_groups_each_block_into_channels():
    frame = torch.arange(16.0).reshape(1, 1, 4, 4)
    # the top-left 2x2 block (0, 1, 4, 5) becomes the four channels of output pixel (0, 0)
    assert patchify(frame, 2)[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]


def test_patch_must_divide_frame():
    with pytest.raises(ValueError, match="patch size 3 does not divide the frame size 64x64"):
        patchify(torch.rand(1, 1, 64, 64), 3)


def test_truth_mask_feeds_true_frames():
    torch.manual_seed(0)
    model = models.create_model("convlstm", height=16, width=16, **SMALL).eval()
    frames = torch.rand(2, 8, 1, 16, 16)
    altered = frames.clone()
    altered[:, 5] = 0.0
    mask = torch.tensor([[False, True, False], [False, False, False]])
    with torch.no_grad():
        a = model(frames, 4, 4, mask).future
        b = model(altered, 4, 4, mask).future
    # sequence 0 was fed true frame 5 at step 5, so outputs from frame 6 on change; sequence 1 not
    assert torch.equal(a[:, :2], b[:, :2])
    assert not torch.equal(a[0, 2:], b[0, 2:])
    assert torch.equal(a[1], b[1])
