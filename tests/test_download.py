"""``run_bench.py download``: checksums, resumed partial downloads, clear errors, on loopback."""
import hashlib
import http.server
import threading

import numpy as np
import pytest

from bench.cli.main import main
from datasets.standard.download import DownloadError, download
from datasets.standard.remote_files import RemoteFile


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    log: list = []
    cut_once: set = set()  # names whose next full response stops half way

    def do_GET(self):  # noqa: N802
        name = self.path.lstrip("/")
        if name not in self.files:
            self.send_error(404)
            return
        body, start = self.files[name], 0
        header = self.headers.get("Range")
        self.log.append((name, header))
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if name in self.cut_once and not header:
            self.cut_once.discard(name)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.log, _Handler.cut_once = {}, [], set()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield _Handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _npy(tmp_path):
    path = tmp_path / "src.npy"
    np.save(path, np.random.default_rng(0).integers(0, 255, (20, 3, 64, 64), dtype=np.uint8))
    return path.read_bytes()


def _remote(name, body):
    return RemoteFile(name, "http://unused.invalid", "sha256", hashlib.sha256(body).hexdigest())


def test_download_verifies_and_puts_the_file_in_place(server, tmp_path):
    handler, base = server
    body = _npy(tmp_path)
    handler.files["mnist_test_seq.npy"] = body
    [path] = download("mnist", tmp_path / "data", base, [_remote("mnist_test_seq.npy", body)],
                      log=lambda *_: None)
    assert path.read_bytes() == body and not list((tmp_path / "data").glob("*.part"))
    # already there and verified: nothing fetched again
    download("mnist", tmp_path / "data", base, [_remote("mnist_test_seq.npy", body)],
             log=lambda *_: None)
    assert len(handler.log) == 1


def test_an_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    handler, base = server
    body = _npy(tmp_path)
    handler.files["mnist_test_seq.npy"] = body
    handler.cut_once.add("mnist_test_seq.npy")
    files = [_remote("mnist_test_seq.npy", body)]
    with pytest.raises(DownloadError, match="interrupted after .* run the same command again"):
        download("mnist", tmp_path, base, files, log=lambda *_: None)
    part = tmp_path / "mnist_test_seq.npy.part"
    assert part.stat().st_size == len(body) // 2
    download("mnist", tmp_path, base, files, log=lambda *_: None)
    assert (tmp_path / "mnist_test_seq.npy").read_bytes() == body and not part.exists()
    assert handler.log[-1] == ("mnist_test_seq.npy", f"bytes={len(body) // 2}-")


def test_a_checksum_mismatch_is_a_clear_error_and_leaves_no_file(server, tmp_path):
    handler, base = server
    body = _npy(tmp_path)
    handler.files["mnist_test_seq.npy"] = body[:-1] + b"\x00"  # corrupted on the server
    with pytest.raises(DownloadError, match="sha256 checksum mismatch: expected"):
        download("mnist", tmp_path, base, [_remote("mnist_test_seq.npy", body)],
                 log=lambda *_: None)
    assert list(tmp_path.iterdir()) == [tmp_path / "src.npy"]


def test_a_file_of_the_wrong_format_is_refused(server, tmp_path):
    handler, base = server
    body = b"not an idx file at all"
    handler.files["train-images-idx3-ubyte.gz"] = body
    with pytest.raises(DownloadError, match="not a valid file"):
        download("mnist", tmp_path, base, [_remote("train-images-idx3-ubyte.gz", body)],
                 log=lambda *_: None)
    assert not list(tmp_path.iterdir())


def test_offline_is_one_line_through_the_cli(tmp_path, capsys, monkeypatch):
    import socket
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("STBENCH_DOWNLOAD_BASE_URL", f"http://127.0.0.1:{port}")
    assert main(["download", "mnist", "--data-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach http://127.0.0.1:") and err.count("\n") == 1, err
