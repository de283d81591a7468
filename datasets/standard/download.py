"""Fetching a dataset's files: each is downloaded into ``<name>.part`` (resumed with an HTTP Range
request when a partial file is there), its checksum verified, its format checked, and only then
moved into place. Standard library only (urllib); what to fetch is in :mod:`.remote_files`.
"""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..core.digests import file_digest
from ..mmnist import mnist_files
from .remote_files import DATASETS, SUBFOLDER, RemoteFile

BASE_URL_ENV = "STBENCH_DOWNLOAD_BASE_URL"  # replaces every file's base URL (tests, mirrors)
CHUNK = 1 << 16
TIMEOUT_S = 30


class DownloadError(RuntimeError):
    """A download that could not finish; the message is one line meant for the user."""


def check_format(path: Path) -> None:
    """The file reads as what its name says (IDX images or the Moving MNIST test array)."""
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
