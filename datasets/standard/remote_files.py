"""The files that can be downloaded (URLs, published checksums) and the pages for the rest.

For the datasets without a stable public URL (taxibj, kth, weatherbench, sevir, and kth40 /
sevir-128 which read the same files) :func:`manual_datasets` names the page to get them from
and the layout.

Checksums (published digests; the file sizes are the known ones):

| file | algorithm | digest | bytes | published by |
|---|---|---|---|---|
| train-images-idx3-ubyte.gz | sha256 | 440fcabf...203523609 | 9,912,422 | many public MNIST loaders |
| mnist_test_seq.npy | md5 | be083ec9...c411eb2 | 81,920,128 | torchvision.datasets.MovingMNIST |

No public sha256 of ``mnist_test_seq.npy`` was found, so its md5 (torchvision's) is checked, and its
format too (uint8, shape (20, 10000, 64, 64)).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

from . import kth, sevir, taxibj, weatherbench


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: where it is and the digest it must have."""

    name: str
    base_url: str  # the file is base_url + "/" + name
    algorithm: str  # hashlib name
    digest: str

    def url(self, base_url: str | None = None) -> str:
        return f"{(base_url or self.base_url).rstrip('/')}/{self.name}"


DATASETS: dict[str, list[RemoteFile]] = {
    "mnist": [
        RemoteFile("train-images-idx3-ubyte.gz",
                   "https://storage.googleapis.com/cvdf-datasets/mnist", "sha256",
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        RemoteFile("mnist_test_seq.npy",
                   "http://www.cs.toronto.edu/~nitish/unsupervised_video", "md5",
                   "be083ec986bfe91a449d63653c411eb2"),
    ],
    # Fashion-MNIST's published md5s (github.com/zalandoresearch/fashion-mnist README)
    "mfmnist": [
        RemoteFile("train-images-idx3-ubyte.gz",
                   "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com", "md5",
                   "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("t10k-images-idx3-ubyte.gz",
                   "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com", "md5",
                   "bef4ecab320f06d8554ea6380940ec79"),
    ],
}
# Where a dataset's files go under --data-root (the layout its reader expects).
SUBFOLDER = {"mfmnist": "moving_fmnist"}


WHAT = {"mnist": "MNIST training digits and the Moving MNIST test file (mnist_test_seq.npy)",
        "mfmnist": "Fashion-MNIST training and t10k images, into DIR/moving_fmnist"}
SAME_FILES = {"kth40": "kth", "sevir-128": "sevir"}  # datasets that read another's files


def manual_datasets() -> dict[str, str]:
    """Datasets whose publishers serve no stable public URL for a plain download: the page to
    get them from and the folder layout expected under --data-root."""
    manual = {name: f"get them from {module.GET_FROM}; expected layout: {module.LAYOUT}"
              for name, module in (("taxibj", taxibj), ("kth", kth),
                                   ("weatherbench", weatherbench), ("sevir", sevir))}
    for name, source in SAME_FILES.items():
        manual[name] = f"it reads {source}'s files: {manual[source]}"
    return manual


def help_epilog(manual: dict[str, str]) -> str:
    """What can be downloaded, and where to get the rest."""
    lines = ["downloaded and verified (checksums, format):"]
    lines += [f"  {name:<13} {WHAT[name]}" for name in DATASETS]
    lines += ["", "not downloadable (no stable public URL for a plain download): get the files",
              "from the page named, into the layout named, then pass DIR as --data-root:"]
    for name, text in manual.items():
        if name in SAME_FILES:
            text = f"reads {SAME_FILES[name]}'s files (above)"
        lines += textwrap.wrap(text, width=96, initial_indent=f"  {name:<13} ",
                               subsequent_indent=" " * 16, break_on_hyphens=False)
    return "\n".join(lines)
