"""``python run_bench.py download mnist|mfmnist [--data-root DIR]``: fetch and verify source files.

For the datasets without a stable public URL (taxibj, kth, weatherbench, sevir, and kth40 /
sevir-128 which read the same files) it names the page to get them from and the layout.

Each file is downloaded into ``<name>.part`` (resumed with an HTTP Range request when a partial
file is there), its checksum verified, its format checked, and only then moved into place.
Standard library only (urllib).

Checksums (published digests; the file sizes are the known ones):

| file | algorithm | digest | bytes | published by |
|---|---|---|---|---|
| train-images-idx3-ubyte.gz | sha256 | 440fcabf...203523609 | 9,912,422 | many public MNIST loaders |
| mnist_test_seq.npy | md5 | be083ec9...c411eb2 | 81,920,128 | torchvision.datasets.MovingMNIST |

No public sha256 of ``mnist_test_seq.npy`` was found, so its md5 (torchvision's) is checked, and its
format too (uint8, shape (20, 10000, 64, 64)).
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import sys
import textwrap
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BASE_URL_ENV = "STBENCH_DOWNLOAD_BASE_URL"  # replaces every file's base URL (tests, mirrors)
CHUNK = 1 << 16
TIMEOUT_S = 30


@dataclass(frozen=True)
class RemoteFile:
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
    from datasets import kth, sevir, taxibj, weatherbench
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


class DownloadError(RuntimeError):
    """A download that could not finish; the message is one line meant for the user."""


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_format(path: Path) -> None:
    """The file reads as what its name says (IDX images or the Moving MNIST test array)."""
    from datasets import mnist_files
    try:
        if path.name.startswith(("train-images", "t10k-images")):
            mnist_files.read_idx_images(path)
        elif path.name == mnist_files.TEST_SEQ_NAME:
            mnist_files.read_mnist_test_seq(path)
    except Exception as error:
        raise DownloadError(f"{path.name}: not a valid file ({type(error).__name__}: "
                            f"{error})") from None


def fetch(remote: RemoteFile, folder: Path, base_url: str | None = None,
          log=print, verify_format: bool = True) -> Path:
    """``folder/remote.name``, downloaded (resuming a ``.part`` file) and verified."""
    folder.mkdir(parents=True, exist_ok=True)
    dest, part = folder / remote.name, folder / f"{remote.name}.part"
    if dest.exists() and file_digest(dest, remote.algorithm) == remote.digest:
        log(f"{remote.name}: already present and verified")
        return dest
    url = remote.url(base_url)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as error:
            if error.code != 416 or not have:  # 416: the partial file is already whole
                raise
            response = None
        if response is not None:
            with response:
                resumed = response.status == 206
                if have and not resumed:
                    log(f"{remote.name}: the server ignored the range request; starting over")
                log(f"{remote.name}: {'resuming at byte ' + str(have) if resumed else 'downloading'}"
                    f" from {url}")
                length = response.headers.get("Content-Length")
                expected = (have if resumed else 0) + int(length) if length else None
                with open(part, "ab" if resumed else "wb") as out:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        out.write(block)
                if expected is not None and part.stat().st_size < expected:
                    raise ConnectionError(f"the connection closed early ({expected} bytes "
                                          "expected)")
    except urllib.error.HTTPError as error:
        raise DownloadError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DownloadError(f"cannot reach {url}: {error.reason} (offline? set {BASE_URL_ENV} "
                            "to use a mirror)") from None
    except (http.client.HTTPException, OSError) as error:
        got = part.stat().st_size if part.exists() else 0
        raise DownloadError(f"download of {url} interrupted after {got} bytes "
                            f"({type(error).__name__}: {error}); run the same command again to "
                            "resume") from None
    actual = file_digest(part, remote.algorithm)
    if actual != remote.digest:
        part.unlink()
        raise DownloadError(f"{remote.name}: {remote.algorithm} checksum mismatch: expected "
                            f"{remote.digest}, got {actual}; the file was removed, run again to "
                            "download it afresh")
    if verify_format:
        try:
            check_format(part)
        except DownloadError:
            part.unlink()
            raise
    os.replace(part, dest)
    log(f"{remote.name}: verified ({remote.algorithm} {actual[:12]}...) -> {dest}")
    return dest


def download(dataset: str, folder: str | Path, base_url: str | None = None,
             files: list[RemoteFile] | None = None, log=print) -> list[Path]:
    """Every file of ``dataset`` into ``folder``; ``base_url``/``files`` override the sources."""
    if files is None:
        if dataset not in DATASETS:
            raise DownloadError(f"unknown dataset {dataset!r}; downloadable: "
                                f"{', '.join(DATASETS)}")
        files = DATASETS[dataset]
    base_url = base_url or os.environ.get(BASE_URL_ENV) or None
    folder = Path(folder) / SUBFOLDER.get(dataset, "")
    return [fetch(remote, folder, base_url, log) for remote in files]


def build_parser(manual: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """The subcommand's options; ``manual``: the datasets it names a page for (default:
    manual_datasets())."""
    from .options import Parser, add_option

    manual = manual_datasets() if manual is None else manual
    parser = Parser(prog="run_bench.py download",
                    description="Download and verify a dataset's files.",
                    epilog=help_epilog(manual), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=[*DATASETS, *manual])
    add_option(parser, "data-root",
               help="where the files go (default: data/mnist for mnist, data for the others, "
                    "which go into their publisher's subfolder: mfmnist into DIR/moving_fmnist); "
                    "then pass the same folder to run_bench.py --data-root")
    parser.add_argument("--base-url", help=f"fetch every file from this base URL instead "
                                           f"(also: environment variable {BASE_URL_ENV})")
    return parser


def main(argv: list[str]) -> int:
    manual = manual_datasets()
    args = build_parser(manual).parse_args(argv)
    if args.dataset in manual:
        print(f"error: {args.dataset} cannot be downloaded automatically: {manual[args.dataset]} "
              "(DIR is what you pass as --data-root)", file=sys.stderr)
        return 1
    folder = args.data_root or ("data/mnist" if args.dataset == "mnist" else "data")
    try:
        download(args.dataset, folder, args.base_url)
    except (DownloadError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
