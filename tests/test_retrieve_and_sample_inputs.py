"""What `wynerkit retrieve` and `sample` are given: bad query files, too many items, outputs that are
directories. Each is one line on stderr and exit 2, never a traceback, and nothing is repeated or dropped."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.errors import UsageError
from wynerkit_plugins.evaluators.retrieve_command import MAX_QUERY_PIXELS, read_query_file

TINY = Path(__file__).parent / "specs" / "tiny.yaml"  # x items are 8 numbers; the test split has 128 pairs
TEST_ITEMS = 128


@pytest.fixture(scope="module")
def run_dir(tiny_run: Path) -> Path:
    return tiny_run


def invoke(host, *args: str):
    return CliRunner().invoke(build_app(host), [str(arg) for arg in args])


def one_line_usage_error(result) -> str:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    return line


def test_retrieve_with_more_test_queries_than_the_split_ranks_each_once(run_dir, builtin_host):
    result = invoke(builtin_host, "retrieve", run_dir, "--test", 200, "--json")
    assert result.exit_code == 0, result.output
    queries = [json.loads(line)["query"] for line in result.stdout.splitlines()]
    assert len(queries) == TEST_ITEMS and len(set(queries)) == TEST_ITEMS  # before: 128 rows, 82 distinct
    assert f"--test 200: the test split has {TEST_ITEMS} distinct queries; ranking each once" in result.stderr


def test_sample_refuses_more_rows_than_test_items_naming_the_options(run_dir, builtin_host, tmp_path):
    out = tmp_path / "x2y.png"
    line = one_line_usage_error(invoke(builtin_host, "sample", run_dir, "--kind", "x2y", "--out", out, "--rows", 200))
    assert line == (
        f"sample --kind x2y --rows 200 --cols 8: draws 200 distinct test items, but the test split has {TEST_ITEMS}; "
        "lower --rows or --cols"
    )
    style = invoke(builtin_host, "sample", run_dir, "--kind", "style", "--out", out, "--rows", 100, "--cols", 100)
    assert "draws 200 distinct test items" in one_line_usage_error(style)  # before: inputs and references overlapped
    assert not out.exists()


def test_sample_and_retrieve_refuse_an_output_that_is_a_directory(run_dir, builtin_host, tmp_path):
    line = one_line_usage_error(invoke(builtin_host, "sample", run_dir, "--kind", "joint", "--out", tmp_path))
    assert line == f"--out {tmp_path}: is a directory; pass a file name, e.g. {tmp_path / 'picture.png'}"
    line = one_line_usage_error(invoke(builtin_host, "retrieve", run_dir, "--test", 2, "--figure", tmp_path))
    assert line.startswith(f"--figure {tmp_path}: is a directory")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


def forged_npy(path: Path, shape: tuple[int, ...]) -> Path:
    """A .npy file whose header claims ``shape`` but that holds 16 numbers."""
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        f.write(np.zeros(16, np.float32).tobytes())
    return path


def bad_npy_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Query files that used to end in a traceback, and the reason each must be refused with."""
    np.save(tmp_path / "nan.npy", np.full((2, 8), np.nan, np.float32))
    np.save(tmp_path / "inf.npy", np.full((8,), np.inf))
    np.save(tmp_path / "empty.npy", np.zeros((0, 8), np.float32))
    (tmp_path / "zero-bytes.npy").write_bytes(b"")
    return {
        "nan": (tmp_path / "nan.npy", "holds NaN or infinite values; x items are finite numbers"),
        "inf": (tmp_path / "inf.npy", "holds NaN or infinite values; x items are finite numbers"),
        "empty": (tmp_path / "empty.npy", "holds no items (shape [0, 8])"),
        "zero bytes": (tmp_path / "zero-bytes.npy", "not a plain .npy array"),
        "forged header": (forged_npy(tmp_path / "forged.npy", (2**40, 8)), "not a plain .npy array"),
        "overflowing header": (forged_npy(tmp_path / "overflow.npy", (2**61, 8)), "not a plain .npy array"),
    }


@pytest.mark.parametrize("kind", ["nan", "inf", "empty", "zero bytes", "forged header", "overflowing header"])
def test_retrieve_refuses_a_bad_npy_query_in_one_line(run_dir, builtin_host, tmp_path, kind):
    path, reason = bad_npy_files(tmp_path)[kind]
    line = one_line_usage_error(invoke(builtin_host, "retrieve", run_dir, "--query", path))
    assert line.startswith(f"--query {path}: ") and reason in line


def png_header(path: Path, width: int, height: int) -> Path:
    """A small, valid PNG that declares ``width`` x ``height`` RGB pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


class ReadsImages:
    """A dataset with its own ``read_x``: the pixel bound holds before it is called."""

    def read_x(self, path: Path):
        raise AssertionError("read_x must not see an oversized image")


@pytest.mark.parametrize(("width", "height"), [(20000, 20000), (9000, 9000)])
@pytest.mark.parametrize("data", [None, ReadsImages()])
def test_an_oversized_query_image_is_refused_from_its_header(tmp_path, width, height, data):
    bomb = png_header(tmp_path / "bomb.png", width, height)  # 20000 x 20000: before, PIL's DecompressionBombError
    with pytest.raises(UsageError) as refused:
        read_query_file(bomb, data, (1, 28, 28))
    assert refused.value.problems == [
        f"--query {bomb}: the image has more than {MAX_QUERY_PIXELS:,} pixels; shrink it first"
        + ("" if width * height > Image.MAX_IMAGE_PIXELS else f" (it is {width} x {height})")
    ]
