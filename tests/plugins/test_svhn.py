"""``load_svhn`` on ``.mat`` fixtures in the SVHN layout, and clear errors for any other layout."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from wynerkit.datafiles import DataFile, DataSource
from wynerkit.errors import UsageError
from wynerkit_plugins.shared.svhn_files import SVHN_SOURCE, load_svhn


def svhn_layout(labels: list[int]) -> dict[str, np.ndarray]:
    """Random images and the given labels, laid out as SVHN stores them (X 32x32x3xN, y Nx1)."""
    rng = np.random.default_rng(0)
    return {
        "X": rng.integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8),
        "y": np.array(labels, dtype=np.uint8).reshape(-1, 1),
    }


def write_test_split(root: Path, variables: dict[str, np.ndarray] | None = None, raw: bytes = b"") -> DataSource:
    """Save ``test_32x32.mat`` (the variables, or raw bytes) under ``root/svhn``; a source with its checksum."""
    path = root / "svhn" / "test_32x32.mat"
    path.parent.mkdir(parents=True)
    if variables is None:
        path.write_bytes(raw)
    else:
        scipy.io.savemat(path, variables)
    return DataSource(name="svhn", files=(DataFile(name=path.name, md5=hashlib.md5(path.read_bytes()).hexdigest()),))


def test_loads_images_channels_last_and_maps_label_10_to_0(tmp_path):
    variables = svhn_layout([10, 1, 9, 10, 5])
    images, labels = load_svhn(tmp_path, "test", source=write_test_split(tmp_path, variables))
    assert images.shape == (5, 32, 32, 3) and images.dtype == np.uint8 and images.flags.c_contiguous
    assert np.array_equal(images[2], variables["X"][:, :, :, 2])
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 9, 0, 5]


Edit = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda v: {"X": v["X"]}, "an SVHN file needs arrays 'X' and 'y'; its variables are: X"),
        (lambda v: {**v, "X": v["X"].astype(np.float64)}, "X is float64 32x32x3x3, expected uint8 32x32x3xN"),
        (lambda v: {**v, "X": v["X"].transpose(3, 0, 1, 2)}, "X is uint8 3x32x32x3, expected uint8 32x32x3xN"),
        (lambda v: {**v, "y": v["y"][:2]}, "y is uint8 2x1, expected integers 3x1 (one label per image in X)"),
        (lambda v: {**v, "y": v["y"] - 1}, "labels range 0..9, expected 1..10 (10 means digit 0)"),
    ],
    ids=["missing-y", "float-x", "n-first", "count-mismatch", "labels-0-based"],
)
def test_wrong_layouts_name_the_file_and_what_was_found(tmp_path, edit: Edit, message):
    source = write_test_split(tmp_path, edit(svhn_layout([1, 2, 10])))
    with pytest.raises(ValueError) as info:
        load_svhn(tmp_path, "test", source=source)
    assert str(info.value) == f"{tmp_path / 'svhn' / 'test_32x32.mat'}: {message}"


def test_a_file_that_is_not_matlab_is_named(tmp_path):
    source = write_test_split(tmp_path, raw=b"<html>not found</html>")
    with pytest.raises(ValueError, match=r"test_32x32.mat: not a readable MATLAB v5 file"):
        load_svhn(tmp_path, "test", source=source)


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(UsageError) as info:
        load_svhn(tmp_path, "extra")
    assert info.value.problems == [
        f"svhn: missing: {tmp_path / 'svhn' / 'extra_32x32.mat'}",
        "svhn: to get the files: wynerkit data download svhn",
    ]
    assert [f.name for f in SVHN_SOURCE.files] == ["train_32x32.mat", "test_32x32.mat", "extra_32x32.mat"]
