"""The strict IDX parser, ``load_mnist`` on fixtures, and (when present) the real MNIST files."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra.numpy import array_shapes, arrays
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.data_root import DATA_ENV
from wynerkit.datafiles import DataFile, DataSource
from wynerkit.errors import UsageError
from wynerkit_plugins.shared.mnist_files import MNIST_SOURCE, SPLIT_FILES, encode_idx, load_mnist, parse_idx

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_parses_hand_written_idx_bytes():
    header = b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x03"
    images = parse_idx(header + bytes(range(6)), expected_dims=3, name="f")
    assert images.dtype == np.uint8 and images.shape == (2, 1, 3)
    assert images.tolist() == [[[0, 1, 2]], [[3, 4, 5]]]
    labels = parse_idx(b"\x00\x00\x08\x01\x00\x00\x00\x02\x07\x09", expected_dims=1, name="f")
    assert labels.tolist() == [7, 9]


@given(arrays(np.uint8, array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)))
def test_idx_round_trip(array):
    parsed = parse_idx(encode_idx(array), expected_dims=array.ndim, name="f")
    assert parsed.shape == array.shape and np.array_equal(parsed, array)


VALID_IMAGES = struct.pack(">4B3I", 0, 0, 8, 3, 2, 2, 2) + bytes(8)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00\x08", "f: 3 bytes is too short for an IDX header"),
        (b"\x01\x00" + VALID_IMAGES[2:], "f: magic 0x01000803 is not an IDX uint8 file (expected 0x00000803)"),
        (b"\x00\x00\x0d\x03" + VALID_IMAGES[4:], "f: magic 0x00000d03 is not an IDX uint8 file (expected 0x00000803)"),
        (b"\x00\x00\x08\x02" + VALID_IMAGES[4:], "f: magic 0x00000802 is not an IDX uint8 file (expected 0x00000803)"),
        (VALID_IMAGES[:10], "f: a header of 3 dimensions needs 16 bytes but 10 follow"),
        (VALID_IMAGES[:-1], "f: header says 2x2x2 = 8 bytes but 7 follow"),
        (VALID_IMAGES + b"\x00", "f: header says 2x2x2 = 8 bytes but 9 follow"),
    ],
    ids=["short", "magic", "type-code", "dim-count", "truncated-header", "truncated-payload", "trailing-bytes"],
)
def test_malformed_idx_names_what_was_read(data, message):
    with pytest.raises(ValueError) as info:
        parse_idx(data, expected_dims=3, name="f")
    assert str(info.value) == message


def random_split(split: str, n_images: int, n_labels: int | None = None) -> dict[str, np.ndarray]:
    """Random digits for one split's two files, keyed by file name."""
    rng = np.random.default_rng(0)
    images_name, labels_name = SPLIT_FILES[split]
    return {
        images_name: rng.integers(0, 256, (n_images, 28, 28), dtype=np.uint8),
        labels_name: rng.integers(0, 10, n_images if n_labels is None else n_labels, dtype=np.uint8),
    }


def write_source(root: Path, arrays: dict[str, np.ndarray], *, gzipped: bool = False) -> DataSource:
    """Write IDX files (raw or gzipped) under ``root/mnist`` and return a source with their checksums."""
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, array in arrays.items():
        content = encode_idx(array)
        if gzipped:
            (folder / (name + ".gz")).write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
        files.append(DataFile(name=name, md5=hashlib.md5(content).hexdigest(), gzip_ok=True))
    return DataSource(name="mnist", files=tuple(files))


@pytest.mark.parametrize("gzipped", [False, True], ids=["raw", "gzip"])
def test_load_mnist_from_fixture_files(tmp_path, gzipped):
    arrays = random_split("test", 3)
    source = write_source(tmp_path, arrays, gzipped=gzipped)
    images, labels = load_mnist(tmp_path, "test", source=source)
    assert images.dtype == np.uint8 and np.array_equal(images, arrays["t10k-images-idx3-ubyte"])
    assert labels.dtype == np.int64 and labels.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert load_mnist(tmp_path, "test", source=source)[0] is images, "a second load comes from the cache"
    assert not images.flags.writeable and not labels.flags.writeable, "cached arrays must not be mutable"


def test_changed_file_is_reverified_not_served_from_cache(tmp_path):
    source = write_source(tmp_path, random_split("train", 6))
    load_mnist(tmp_path, "train", source=source)
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte"
    content = bytearray(path.read_bytes())
    content[-1] = (content[-1] + 1) % 10
    path.write_bytes(bytes(content))
    with pytest.raises(UsageError, match="train-labels-idx1-ubyte: md5 mismatch"):
        load_mnist(tmp_path, "train", source=source)


def test_image_and_label_counts_must_agree(tmp_path):
    source = write_source(tmp_path, random_split("test", 3, n_labels=4))
    with pytest.raises(ValueError, match="mnist test: 3 images but 4 labels"):
        load_mnist(tmp_path, "test", source=source)


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown MNIST split 'valid'; valid splits are train, test"):
        load_mnist(tmp_path, "valid")  # type: ignore[arg-type]


def real_mnist_root() -> Path:
    """The data root holding the real MNIST, or skip."""
    root = os.environ.get(DATA_ENV, "").strip()
    if not root:
        pytest.skip(f"{DATA_ENV} is unset")
    root_path = Path(root).expanduser()
    if any(f.locate(MNIST_SOURCE.folder(root_path)) is None for f in MNIST_SOURCE.files):
        pytest.skip(f"the MNIST files are not under {root_path}")
    return root_path


@pytest.fixture
def cli(builtin_host):
    app = build_app(builtin_host)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def test_real_mnist_loads_with_the_published_label_counts(cli):
    root = real_mnist_root()
    for split, counts in (("train", TRAIN_COUNTS), ("test", TEST_COUNTS)):
        images, labels = load_mnist(root, split)
        assert images.shape == (sum(counts), 28, 28) and images.dtype == np.uint8
        assert np.bincount(labels, minlength=10).tolist() == counts
    result = cli("data", "verify", "mnist", "--root", root)
    assert result.exit_code == 0, result.stderr


def test_real_mnist_with_a_flipped_byte_fails_verification(cli, tmp_path):
    root = real_mnist_root()
    copy = tmp_path / "mnist"
    copy.mkdir()
    for file in MNIST_SOURCE.files:
        shutil.copy(file.locate(MNIST_SOURCE.folder(root)), copy)
    packed = copy / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(packed.read_bytes()))
    content[100] ^= 0x01
    packed.unlink()
    flipped = copy / "t10k-labels-idx1-ubyte"
    flipped.write_bytes(bytes(content))
    expected = "27ae3e4e09519cfbb04c329615203637"
    message = f"mnist: {flipped}: md5 mismatch: expected {expected}, got {hashlib.md5(content).hexdigest()}"

    result = cli("data", "verify", "mnist", "--root", tmp_path)
    assert result.exit_code == 1
    assert message in result.stderr.splitlines()
    with pytest.raises(UsageError) as info:
        load_mnist(tmp_path, "test")
    assert info.value.problems == [message, "mnist: to get the files: wynerkit data download mnist"]
