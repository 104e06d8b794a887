"""Data root resolution and `wynerkit data info|verify` on a data source registered by a test plugin."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from wynerkit import hookimpl
from wynerkit.cli.app import build_app
from wynerkit.data.batching import collate_pairs, stack_pairs
from wynerkit.data_root import DATA_ENV, default_data_root, resolve_data_root
from wynerkit.datafiles import DataFile, DataSource, require_files
from wynerkit.errors import UsageError
from wynerkit.plugins import PluginHost, PluginSource, discover

RAW = b"raw content of a file\n" * 100
PACKED = b"content that may be stored gzipped\n" * 50
SOURCE = DataSource(
    name="toy",
    files=(
        DataFile(name="raw.bin", sha256=hashlib.sha256(RAW).hexdigest()),
        DataFile(name="packed.bin", md5=hashlib.md5(PACKED).hexdigest(), gzip_ok=True, urls=("http://127.0.0.1:9/x",)),
    ),
    how_to_get="copy the toy files by hand",
)


class ToySource:
    @hookimpl
    def wynerkit_register_data_sources(self, register):
        register("toy", lambda params, context: SOURCE, summary="A toy data source.")


@pytest.fixture
def cli():
    host = PluginHost.load([*discover(builtin_only=True), PluginSource.from_object("toy", ToySource())], blocked=())
    app = build_app(host)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def populate(root: Path, *, flip: bool = False) -> None:
    folder = root / "toy"
    folder.mkdir(parents=True)
    (folder / "raw.bin").write_bytes(RAW)
    data = bytearray(PACKED)
    if flip:
        data[10] ^= 0x01
    (folder / "packed.bin.gz").write_bytes(gzip.compress(bytes(data)))


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert resolve_data_root() == default_data_root()
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert resolve_data_root() == tmp_path / "env"
    assert resolve_data_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_info_reports_presence_and_verification(cli, tmp_path):
    rows = {r["name"]: r for r in json.loads(cli("data", "info", "--json", "--root", tmp_path).stdout)}
    assert rows["toy"]["path"] == str(tmp_path / "toy")
    assert rows["toy"]["present"] is False and rows["toy"]["verified"] is False
    populate(tmp_path)
    rows = {r["name"]: r for r in json.loads(cli("data", "info", "--json", "--root", tmp_path).stdout)}
    assert rows["toy"]["present"] is True and rows["toy"]["verified"] is True
    assert [f["path"] for f in rows["toy"]["files"]] == [
        str(tmp_path / "toy" / "raw.bin"),
        str(tmp_path / "toy" / "packed.bin.gz"),
    ]


def test_verify_exit_codes_and_messages(cli, tmp_path):
    populate(tmp_path, flip=True)
    result = cli("data", "verify", "toy", "--root", tmp_path)
    assert result.exit_code == 1
    expected = hashlib.md5(PACKED).hexdigest()
    assert f"toy: {tmp_path / 'toy' / 'packed.bin.gz'}: md5 mismatch: expected {expected}, got " in result.stderr
    assert "(of the decompressed content)" in result.stderr and "raw.bin" not in result.stderr
    (tmp_path / "toy" / "packed.bin.gz").write_bytes(gzip.compress(PACKED))
    assert cli("data", "verify", "toy", "--root", tmp_path).exit_code == 0


def test_missing_files_name_every_place_looked_and_how_to_get_them(tmp_path):
    with pytest.raises(UsageError) as info:
        require_files(SOURCE, tmp_path)
    folder = tmp_path / "toy"
    assert info.value.problems == [
        f"toy: missing: {folder / 'raw.bin'}",
        f"toy: missing: {folder / 'packed.bin'} or {folder / 'packed.bin.gz'}",
        "toy: to get the files: copy the toy files by hand",
    ]


def test_unknown_source_and_undownloadable_source_exit_2(cli, tmp_path):
    result = cli("data", "verify", "nope", "--root", tmp_path)
    assert result.exit_code == 2 and "unknown data source 'nope'; registered:" in result.stderr
    result = cli("data", "download", "toy", "--root", tmp_path)
    assert (
        result.exit_code == 2 and "toy: cannot be downloaded automatically: copy the toy files by hand" in result.stderr
    )


def test_collate_passes_batches_through_and_collates_items():
    batch = stack_pairs(torch.zeros(3, 2), torch.ones(3, 1), torch.arange(3), torch.full((3,), -1))
    assert collate_pairs(batch) is batch
    items = [{"x": torch.zeros(2), "y": torch.ones(1), "x_label": 1, "y_label": -1}] * 4
    collated = collate_pairs(items)
    assert collated["x"].shape == (4, 2) and collated["x_label"].tolist() == [1, 1, 1, 1]
