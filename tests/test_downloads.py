"""Resumable, verified downloads against a local HTTP server that can cut responses short.

The server serves small MNIST-format IDX ``.gz`` fixtures; a ``DataSource`` built here carries
their checksums and points its mirrors at the server. Downloads go through
``wynerkit.data.download.download_source`` and through ``wynerkit data download``.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from wynerkit import hookimpl
from wynerkit.cli.app import build_app
from wynerkit.data.download import DownloadError, download_source
from wynerkit.datafiles import DataFile, DataSource, verify_source
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit_plugins.shared.mnist_files import SPLIT_FILES, encode_idx, load_mnist

NAME = "fixture-mnist"
_rng = np.random.default_rng(0)
CONTENT = {
    name: encode_idx(
        _rng.integers(0, 4, (n, 28, 28), dtype=np.uint8) * 85 if "images" in name else _rng.integers(0, 10, n, np.uint8)
    )
    for split, n in (("train", 16), ("test", 4))
    for name in SPLIT_FILES[split]
}
"""The decompressed content of the four fixture files (few grey levels, so gzip really compresses)."""
PACKED = {name: gzip.compress(content, mtime=0) for name, content in CONTENT.items()}
BIG = "train-images-idx3-ubyte"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def fixture_source(*mirrors: str) -> DataSource:
    """The fixture files with their checksums, downloadable from each mirror (a base URL) in order."""
    files = tuple(
        DataFile(name=name, md5=md5(content), gzip_ok=True, urls=tuple(f"{m}/{name}.gz" for m in mirrors))
        for name, content in CONTENT.items()
    )
    return DataSource(name=NAME, files=files)


@dataclass
class Mirror:
    """What the local server serves (by URL path) and what it was asked."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)
    """URL path -> close the connection after this many body bytes, once, while advertising them all."""
    seen: list[tuple[str, str | None, int]] = field(default_factory=list)
    """(URL path, Range header, status) of every request; status 0 when the reply was not HTTP."""

    def serve(self, folder: str, packed: dict[str, bytes]) -> str:
        """Serve ``packed`` (file name -> .gz bytes) under ``/folder``; returns that mirror's base URL."""
        self.files.update({f"/{folder}/{name}.gz": data for name, data in packed.items()})
        return f"{self.base}/{folder}"


class Handler(BaseHTTPRequestHandler):
    """GET with ``Range: bytes=N-`` (206 / 416), truncation on request, and a non-HTTP reply under ``/not-http``."""

    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        mirror: Mirror = self.server.mirror  # type: ignore[attr-defined]
        body = mirror.files.get(self.path)
        wanted = self.headers.get("Range")
        if self.path.startswith("/not-http/"):
            mirror.seen.append((self.path, wanted, 0))
            self.wfile.write(b"this is not an HTTP response\r\n")
            return
        start = int(wanted.removeprefix("bytes=").removesuffix("-")) if wanted else 0
        if body is None:
            status, headers, chunk = 404, {}, b""
        elif start >= len(body):
            status, headers, chunk = 416, {"Content-Range": f"bytes */{len(body)}"}, b""
        elif wanted:
            status, headers, chunk = 206, {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}, body[start:]
        else:
            status, headers, chunk = 200, {}, body
        mirror.seen.append((self.path, wanted, status))
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(chunk))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(chunk[: mirror.cut_after.pop(self.path, None)])  # HTTP/1.0: the connection closes next

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    for proxy_env in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(proxy_env, "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.mirror = Mirror(base=f"http://127.0.0.1:{server.server_port}")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server.mirror  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def dead_url() -> str:
    """A URL on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def corrupted(content: bytes) -> bytes:
    flipped = bytearray(content)
    flipped[len(flipped) // 2] ^= 0xFF
    return bytes(flipped)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in (root / NAME).iterdir())


def assert_complete(source: DataSource, root: Path) -> None:
    """Every file verified, stored as .gz, nothing else left behind, and loadable as MNIST."""
    assert all(s.verified for s in verify_source(source, root))
    assert leftovers(root) == sorted(f"{name}.gz" for name in CONTENT)
    images, labels = load_mnist(root, "test", source=source)
    assert images.tobytes() == CONTENT["t10k-images-idx3-ubyte"][16:] and len(labels) == 4


def test_clean_download_is_verified_and_leaves_no_part(mirror, tmp_path):
    source = fixture_source(mirror.serve("good", PACKED))
    statuses = download_source(source, tmp_path)
    assert [s.path for s in statuses] == [tmp_path / NAME / f"{name}.gz" for name in CONTENT]
    assert_complete(source, tmp_path)


def test_truncated_download_keeps_only_the_part_and_the_next_attempt_resumes(mirror, tmp_path):
    source = fixture_source(mirror.serve("good", PACKED))
    path = f"/good/{BIG}.gz"
    mirror.cut_after[path] = 1000
    with pytest.raises(DownloadError) as info:
        download_source(source, tmp_path)
    assert f"connection closed after 1000 of {len(PACKED[BIG])} bytes (kept {BIG}.gz.part to resume)" in str(info.value)
    assert leftovers(tmp_path) == [f"{BIG}.gz.part"]
    assert (tmp_path / NAME / f"{BIG}.gz.part").stat().st_size == 1000

    download_source(source, tmp_path)
    assert (path, "bytes=1000-", 206) in mirror.seen
    assert_complete(source, tmp_path)


@pytest.mark.parametrize(
    ("served", "actual"),
    [
        (gzip.compress(corrupted(CONTENT[BIG]), mtime=0), md5(corrupted(CONTENT[BIG]))),
        (corrupted(PACKED[BIG]), "unreadable (error: Error -3 while decompressing data"),
    ],
    ids=["wrong-content", "damaged-gzip"],
)
def test_corrupt_download_names_both_digests_and_leaves_nothing(mirror, tmp_path, served, actual):
    source = fixture_source(mirror.serve("bad", {**PACKED, BIG: served}))
    with pytest.raises(DownloadError) as info:
        download_source(source, tmp_path)
    assert f"md5 mismatch: expected {md5(CONTENT[BIG])}, got {actual}" in str(info.value)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("first", ["dead", "not-http", "missing", "corrupt"])
def test_a_bad_first_mirror_falls_back_to_the_next(mirror, tmp_path, first):
    bad = {
        "dead": dead_url,
        "not-http": lambda: f"{mirror.base}/not-http",
        "missing": lambda: f"{mirror.base}/nothing-here",
        "corrupt": lambda: mirror.serve("bad", {name: gzip.compress(corrupted(c)) for name, c in CONTENT.items()}),
    }[first]()
    good = mirror.serve("good", PACKED)
    source = fixture_source(bad, good)
    download_source(source, tmp_path)
    assert_complete(source, tmp_path)
    tried = {mirror.base + path.rsplit("/", 1)[0] for path, _, _ in mirror.seen}
    assert tried == {good} | ({bad} if bad.startswith(mirror.base) else set())


def test_valid_files_are_not_downloaded_again(mirror, tmp_path):
    source = fixture_source(mirror.serve("good", PACKED))
    download_source(source, tmp_path)
    mirror.seen.clear()
    download_source(source, tmp_path)
    assert mirror.seen == []


def test_a_complete_part_answered_with_416_is_verified_and_kept(mirror, tmp_path):
    source = fixture_source(mirror.serve("good", PACKED))
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / f"{BIG}.gz.part").write_bytes(PACKED[BIG])
    download_source(source, tmp_path)
    assert (f"/good/{BIG}.gz", f"bytes={len(PACKED[BIG])}-", 416) in mirror.seen
    assert_complete(source, tmp_path)


def test_a_corrupt_uncompressed_copy_is_replaced_not_left_to_shadow_the_download(mirror, tmp_path):
    source = fixture_source(mirror.serve("good", PACKED))
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / BIG).write_bytes(corrupted(CONTENT[BIG]))
    download_source(source, tmp_path)
    assert_complete(source, tmp_path)


class FixturePlugin:
    """Registers one data source, so the CLI can download it."""

    def __init__(self, source: DataSource) -> None:
        self.source = source

    @hookimpl
    def wynerkit_register_data_sources(self, register):
        register(self.source.name, lambda params, context: self.source, summary="MNIST-format download fixtures.")


def cli_for(source: DataSource):
    host = PluginHost.load(
        [*discover(builtin_only=True), PluginSource.from_object(NAME, FixturePlugin(source))], blocked=()
    )
    app = build_app(host)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def test_cli_download_resumes_after_a_cut_and_verifies(mirror, tmp_path):
    cli = cli_for(fixture_source(mirror.serve("good", PACKED)))
    mirror.cut_after[f"/good/{BIG}.gz"] = 1000
    result = cli("data", "download", NAME, "--root", tmp_path)
    assert result.exit_code == 1
    assert f"{NAME}: could not download {BIG}:" in result.stderr and "kept" in result.stderr
    assert leftovers(tmp_path) == [f"{BIG}.gz.part"]

    result = cli("data", "download", NAME, "--root", tmp_path)
    assert result.exit_code == 0, result.stderr
    assert f"{NAME}: all 4 files verified in {tmp_path / NAME}" in result.stdout
    assert (f"/good/{BIG}.gz", "bytes=1000-", 206) in mirror.seen
    assert cli("data", "verify", NAME, "--root", tmp_path).exit_code == 0


def test_cli_download_of_corrupt_content_exits_1_naming_the_digests(mirror, tmp_path):
    bad = {BIG: gzip.compress(corrupted(CONTENT[BIG]))}
    cli = cli_for(fixture_source(mirror.serve("bad", {**PACKED, **bad})))
    result = cli("data", "download", NAME, "--root", tmp_path)
    assert result.exit_code == 1
    expected = f"md5 mismatch: expected {md5(CONTENT[BIG])}, got {md5(corrupted(CONTENT[BIG]))}"
    assert expected in result.stderr
    assert leftovers(tmp_path) == []
