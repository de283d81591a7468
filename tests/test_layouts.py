"""Own data in any axis layout (NTCHW, TCHW, NTHW, THW, NTHWC, THWC), and clear errors where a
shape looks like another layout than the one assumed."""
import h5py
import numpy as np
import pytest

from datasets import DatasetFileError, SequenceFileConfig, load_sequence_dataset, read_config
from datasets.files.layouts import LAYOUTS
from datasets.files.readers import SequenceSource

N, T, H, W = 3, 10, 6, 8  # H != W: a swapped axis shows


def stored(layout: str, base: np.ndarray) -> np.ndarray:
    """``base`` [N, T, C, H, W] rearranged into ``layout`` (the first sequence if no N)."""
    array = base if layout.startswith("N") else base[0]
    if "C" not in layout:
        return array[..., 0, :, :]
    return np.moveaxis(array, -3, -1) if layout.endswith("C") else array


def write(path, array):
    if path.suffix == ".npy":
        np.save(path, array)
    else:
        with h5py.File(path, "w") as f:
            f["frames"] = array


@pytest.mark.parametrize("suffix", [".h5", ".npy"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_as_tchw_frames(tmp_path, layout, suffix):
    channels = 1 if "C" not in layout else 2
    base = np.random.default_rng(0).random((N, T, channels, H, W)).astype(np.float32)
    path = tmp_path / f"data{suffix}"
    write(path, stored(layout, base))
    source = SequenceSource(path, "hdf5" if suffix == ".h5" else "npy", "frames", None, layout)
    assert source.frame_shape == (channels, H, W) and source.layout == layout
    assert source.lengths == [T] * (N if layout.startswith("N") else 1)
    np.testing.assert_array_equal(source.read(len(source) - 1, 2, 7), base[len(source) - 1, 2:7])


def test_a_channel_last_file_trains_end_to_end(tmp_path):
    base = np.random.default_rng(1).random((6, T, 3, H, W)).astype(np.float32)
    np.save(tmp_path / "rgb.npy", stored("NTHWC", base))
    data = load_sequence_dataset(SequenceFileConfig(
        name="rgb", path=str(tmp_path / "rgb.npy"), layout="NTHWC", in_len=2, out_len=2))
    assert (data.channels, data.height, data.width) == (3, H, W)
    assert data.test[0].shape == (4, 3, H, W)
    assert data.describe()["layout"] == ["NTHWC"]


def test_one_sequence_without_channels_is_cut_into_segments(tmp_path):
    with h5py.File(tmp_path / "one.h5", "w") as f:
        f["frames"] = np.random.default_rng(2).random((40, H, W)).astype(np.float32)
    data = load_sequence_dataset(SequenceFileConfig(  # 3-D: THW by default
        name="one", path=str(tmp_path / "one.h5"), in_len=2, out_len=2, segment_length=4))
    assert (data.channels, data.height, data.width) == (1, H, W) and len(data.test) >= 1


@pytest.mark.parametrize("shape,assumed,likely", [
    ((6, 20, 16, 16), "TCHW", "NTHW"),        # N sequences of T single-channel frames
    ((30, 16, 16, 3), "TCHW", "THWC"),        # one channel-last sequence
    ((6, 20, 32, 32, 1), "NTCHW", "NTHWC"),   # channel-last sequences
])
@pytest.mark.parametrize("suffix", [".h5", ".npy"])
def test_a_shape_that_looks_like_another_layout_names_it(tmp_path, shape, assumed, likely, suffix):
    write(tmp_path / f"d{suffix}", np.zeros(shape, np.float32))
    with pytest.raises(DatasetFileError) as error:
        load_sequence_dataset(SequenceFileConfig(name="d", path=str(tmp_path / f"d{suffix}")))
    message = str(error.value)
    assert f"shape {shape}" in message and f"default layout {assumed!r}" in message
    assert f'layout = "{likely}"' in message and f'layout = "{assumed}"' in message


def test_many_channels_in_5d_are_taken_as_they_are(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((2, 5, 8, 16, 16), np.float32))
    assert SequenceSource(tmp_path / "d.npy", "npy", None, None).frame_shape == (8, 16, 16)


def test_a_layout_of_the_wrong_rank_or_name_is_refused(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((2, 5, 16, 16), np.float32))
    with pytest.raises(DatasetFileError, match=r"layout 'NTCHW' needs rank 5; layouts of rank "
                                               r"4: TCHW, NTHW, THWC"):
        SequenceSource(tmp_path / "d.npy", "npy", None, None, "NTCHW")
    (tmp_path / "d.toml").write_text('name = "d"\npath = "d.npy"\nlayout = "NCTHW"\n')
    with pytest.raises(ValueError, match="layout must be one of NTCHW, TCHW, NTHW, THW, NTHWC, "
                                         "THWC; got 'NCTHW'"):
        read_config(tmp_path / "d.toml")
