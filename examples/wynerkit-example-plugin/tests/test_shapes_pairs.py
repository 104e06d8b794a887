"""Tests of the shapes-pairs dataset and its data source, through wynerkit's public API only.

The files are made here by the plugin's own generator, served from a local HTTP server on
127.0.0.1 and fetched with ``wynerkit data download`` (a subprocess, as a user runs it), so the
download path and its SHA-256 checks are exercised without the internet.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import wynerkit_example
from pydantic import ValidationError
from wynerkit_example import ShapesPairs, ShapesPairsParams
from wynerkit_example.shapes_files import CLASSES, shapes_contents, write_shapes_files
from wynerkit_example.shapes_source import MIRROR_ENV, SHA256, current_source

from wynerkit.datafiles import DataSource
from wynerkit.errors import UsageError
from wynerkit.testing import check_component, load_plugin

SIZES = {"train": 84, "valid": 12, "test": 12}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local server of the published files (``/shapes-pairs``) and a tampered copy (``/tampered``)."""
    site = tmp_path_factory.mktemp("mirror")
    write_shapes_files(site / "shapes-pairs")
    shutil.copytree(site / "shapes-pairs", site / "tampered")
    (site / "tampered" / "labels.json").write_bytes(b'{"classes":[],"train":[],"valid":[],"test":[]}')
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def wynerkit_cli(*args: str, mirror: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, MIRROR_ENV: mirror}
    return subprocess.run(
        [sys.executable, "-m", "wynerkit", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def data_root(mirror: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding the files, downloaded with ``wynerkit data download shapes-pairs``."""
    root = tmp_path_factory.mktemp("data")
    result = wynerkit_cli("data", "download", "shapes-pairs", "--root", str(root), mirror=f"{mirror}/shapes-pairs")
    assert result.returncode == 0, result.stderr
    assert "shapes-pairs: all 4 files verified" in result.stdout
    return root


def test_the_generator_makes_exactly_the_files_the_source_lists() -> None:
    contents = shapes_contents()
    assert {name: hashlib.sha256(content).hexdigest() for name, content in contents.items()} == SHA256
    assert sum(len(content) for content in contents.values()) < 64_000


def test_download_stores_the_files_under_the_sources_subdir_and_verify_passes(data_root: Path, mirror: str) -> None:
    folder = data_root / "example" / "shapes"
    assert sorted(p.name for p in folder.iterdir()) == ["labels.json", "test.pgm.gz", "train.pgm.gz", "valid.pgm.gz"]
    result = wynerkit_cli("data", "verify", "shapes-pairs", "--root", str(data_root), mirror=mirror)
    assert result.returncode == 0, result.stderr
    assert f"shapes-pairs: all 4 files verified in {folder}" in result.stdout


def test_a_download_with_the_wrong_checksum_is_not_kept(mirror: str, tmp_path: Path) -> None:
    result = wynerkit_cli("data", "download", "shapes-pairs", "--root", str(tmp_path), mirror=f"{mirror}/tampered")
    assert result.returncode == 1
    assert f"labels.json: sha256 mismatch: expected {SHA256['labels.json']}" in result.stderr
    assert not (tmp_path / "example" / "shapes" / "labels.json").exists()


def test_honours_the_dataset_and_data_source_contracts(data_root: Path) -> None:
    host = load_plugin(wynerkit_example, name="example", with_builtins=False)
    registered = {(c.kind, c.name) for c in host.registry if c.plugin == "example"}
    assert registered >= {("dataset", "shapes-pairs"), ("data_source", "shapes-pairs")}
    provider = check_component(host, "dataset", "shapes-pairs", {"root": str(data_root)})
    assert provider.describe()["sizes"] == SIZES
    source = check_component(host, "data_source", "shapes-pairs")
    assert isinstance(source, DataSource)
    assert source.folder(data_root) == data_root / "example" / "shapes"


def test_params_refuse_an_unknown_field() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ShapesPairsParams(roots="/data")


def test_x_is_the_outline_of_y_and_both_share_the_label(data_root: Path) -> None:
    provider = ShapesPairs(data_root)
    for split, size in SIZES.items():
        items = provider.split(split)
        batch = items.__getitems__(list(range(size)))
        assert batch["x"].shape == batch["y"].shape == (size, 1, 16, 16)
        assert batch["x"].dtype == torch.float32
        assert batch["x"].min() == -1 and batch["x"].max() <= 1
        drawn_x, drawn_y = batch["x"] > -1, batch["y"] > -1
        assert torch.all(drawn_x <= drawn_y), "every outline pixel lies on the filled shape"
        assert torch.all(drawn_x.sum((1, 2, 3)) < drawn_y.sum((1, 2, 3))), "the outline leaves the inside empty"
        assert torch.equal(batch["x_label"], batch["y_label"])
        counts = torch.bincount(batch["x_label"], minlength=len(CLASSES))
        assert counts.tolist() == [size // len(CLASSES)] * len(CLASSES)


def test_batched_fetch_equals_item_by_item_fetch(data_root: Path) -> None:
    items = ShapesPairs(data_root).split("train")
    indices = [5, 0, 83, 5]
    batch = items.__getitems__(indices)
    stacked = torch.utils.data.default_collate([items[i] for i in indices])
    for key in ("x", "y", "x_label", "y_label"):
        assert torch.equal(batch[key], stacked[key]), key


def test_missing_files_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="wynerkit data download shapes-pairs") as caught:
        ShapesPairs(tmp_path)
    assert str(tmp_path / "example" / "shapes" / "train.pgm") in str(caught.value)


def test_a_damaged_file_is_refused_before_it_is_read(data_root: Path, tmp_path: Path) -> None:
    shutil.copytree(data_root / "example", tmp_path / "example")
    labels = tmp_path / "example" / "shapes" / "labels.json"
    labels.write_bytes(labels.read_bytes().replace(b"circle", b"circles"))
    with pytest.raises(UsageError, match=f"labels.json: sha256 mismatch: expected {SHA256['labels.json']}"):
        ShapesPairs(tmp_path)


def test_the_source_downloads_from_the_configured_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.test/files/")
    urls = {file.name: file.urls for file in current_source().files}
    assert urls["train.pgm"] == ("http://mirror.test/files/train.pgm.gz",)
    assert urls["labels.json"] == ("http://mirror.test/files/labels.json",)
