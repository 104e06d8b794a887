"""The ``svhn`` data source's files and a loader for its cropped-digit ``.mat`` files.

SVHN ships each split as a MATLAB file with ``X`` (uint8 ``32x32x3xN``) and ``y`` (``Nx1``, digits
1..9 with 10 standing for 0). ``load_svhn`` checks that layout and says what it found when a file
differs, because a transposed or relabelled array would otherwise train silently on wrong data.
Arrays are not cached: ``extra`` alone is 1.6 GB, so the caller decides how long to keep it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import scipy.io

from wynerkit.datafiles import DataFile, DataSource, require_files

BASE_URL = "http://ufldl.stanford.edu/housenumbers/"
SPLIT_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}
_MD5 = {
    "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
    "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
    "extra_32x32.mat": "a93ce644f1a588dc4d68dda5feec44a7",
}
SVHN_SOURCE = DataSource(
    name="svhn",
    files=tuple(DataFile(name=name, md5=md5, urls=(BASE_URL + name,)) for name, md5 in _MD5.items()),
    description="SVHN cropped house-number digits, 32x32 RGB: 73,257 train, 26,032 test, 531,131 extra",
    homepage=BASE_URL,
)
IMAGE_LAYOUT = (32, 32, 3)


def load_svhn(
    root: Path, split: Literal["train", "test", "extra"], *, source: DataSource = SVHN_SOURCE
) -> tuple[np.ndarray, np.ndarray]:
    """One split as uint8 images ``[N, 32, 32, 3]`` and int64 labels ``[N]`` (label 10 becomes 0).

    The file is checked against ``source``'s checksum first (a UsageError names it and how to get
    it). Tests pass a ``source`` with their fixtures' checksums; everyone else keeps the default.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown SVHN split {split!r}; valid splits are {', '.join(SPLIT_FILES)}")
    name = SPLIT_FILES[split]
    path = require_files(source, Path(root), [name])[name]
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # on garbage, scipy raises anything from IndexError to MatReadError
        raise ValueError(f"{path}: not a readable MATLAB v5 file: {exc}") from exc
    return _svhn_arrays(mat, str(path))


def _svhn_arrays(mat: dict[str, object], where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from a loaded SVHN ``.mat``; a ValueError naming what is wrong otherwise."""
    x, y = (mat.get(key) for key in ("X", "y"))
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        keys = ", ".join(sorted(k for k in mat if not k.startswith("__"))) or "none"
        raise ValueError(f"{where}: an SVHN file needs arrays 'X' and 'y'; its variables are: {keys}")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != IMAGE_LAYOUT:
        shape = "x".join(map(str, x.shape))
        raise ValueError(f"{where}: X is {x.dtype} {shape}, expected uint8 32x32x3xN")
    n = x.shape[3]
    if y.dtype.kind not in "iu" or y.shape != (n, 1):
        shape = "x".join(map(str, y.shape))
        raise ValueError(f"{where}: y is {y.dtype} {shape}, expected integers {n}x1 (one label per image in X)")
    labels = y[:, 0].astype(np.int64)
    if n and (labels.min() < 1 or labels.max() > 10):
        raise ValueError(f"{where}: labels range {labels.min()}..{labels.max()}, expected 1..10 (10 means digit 0)")
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)), labels % 10
