"""The ``mnist`` data source's files and a strict loader for its IDX files.

The four files live under ``<data root>/mnist/``, raw or gzipped; their checksums are the official
MD5s of the decompressed content, so a recompressed ``.gz`` verifies as well as the original.
``parse_idx`` refuses anything that is not exactly an IDX uint8 array: a wrong header or a payload
of the wrong length is an error naming what was read, never a silently misshapen array.
"""

from __future__ import annotations

import functools
import math
import struct
from pathlib import Path
from typing import Literal

import numpy as np

from wynerkit.datafiles import DataFile, DataSource, open_content, require_files

MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
IMAGE_SHAPE = (28, 28)
IDX_UINT8 = 0x08


def _idx_file(name: str, md5: str, size: int) -> DataFile:
    return DataFile(name=name, md5=md5, gzip_ok=True, urls=tuple(f"{m}{name}.gz" for m in MIRRORS), size=size)


MNIST_SOURCE = DataSource(
    name="mnist",
    files=(
        _idx_file("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", 47_040_016),
        _idx_file("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", 60_008),
        _idx_file("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", 7_840_016),
        _idx_file("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", 10_008),
    ),
    description="MNIST handwritten digits: 60,000 train and 10,000 test 28x28 grayscale images (IDX)",
    homepage="http://yann.lecun.com/exdb/mnist/",
)
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def parse_idx(data: bytes, *, expected_dims: int, name: str) -> np.ndarray:
    """The uint8 array stored in IDX ``data``; a ValueError naming what was read otherwise.

    The header is two zero bytes, the type code 0x08 (uint8), the number of dimensions, then each
    dimension as a big-endian uint32; the payload must hold exactly their product in bytes.
    The array is a read-only view of ``data``.
    """
    expected_magic = IDX_UINT8 << 8 | expected_dims
    if len(data) < 4:
        raise ValueError(f"{name}: {len(data)} bytes is too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise ValueError(f"{name}: magic 0x{magic:08x} is not an IDX uint8 file (expected 0x{expected_magic:08x})")
    header = 4 + 4 * expected_dims
    if len(data) < header:
        raise ValueError(f"{name}: a header of {expected_dims} dimensions needs {header} bytes but {len(data)} follow")
    dims = struct.unpack(f">{expected_dims}I", data[4:header])
    want = math.prod(dims)  # Python ints: a forged header cannot overflow
    if len(data) - header != want:
        shape = "x".join(map(str, dims))
        raise ValueError(f"{name}: header says {shape} = {want} bytes but {len(data) - header} follow")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (the inverse of ``parse_idx``), e.g. for MNIST-format fixtures."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX uint8 needs a uint8 array, got {array.dtype}")
    header = bytes([0, 0, IDX_UINT8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def load_mnist(
    root: Path, split: Literal["train", "test"], *, source: DataSource = MNIST_SOURCE
) -> tuple[np.ndarray, np.ndarray]:
    """One split as uint8 images ``[N, 28, 28]`` and int64 labels ``[N]``, both read-only.

    The files are checked against ``source``'s checksums (a UsageError names every bad file and
    how to get it). Tests pass a ``source`` with their fixtures' checksums; everyone else keeps the
    default. Parsed arrays are cached per process, keyed by each file's path, size and mtime, so a
    second load of unchanged files neither re-reads nor re-verifies them.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown MNIST split {split!r}; valid splits are {', '.join(SPLIT_FILES)}")
    folder = source.folder(Path(root))
    stamps = tuple(_stamp(f.locate(folder)) for f in source.files if f.name in SPLIT_FILES[split])
    return _load_split(source, Path(root), split, stamps)


def _stamp(path: Path | None) -> tuple[str, int, int] | None:
    """What identifies a file's version for the cache: resolved path, size and mtime."""
    if path is None:
        return None
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _load_split(
    source: DataSource, root: Path, split: str, stamps: tuple[tuple[str, int, int] | None, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Verify and parse one split; ``stamps`` only keys the cache (a changed file is a new key)."""
    images_name, labels_name = SPLIT_FILES[split]
    paths = require_files(source, root, [images_name, labels_name])
    images = _read_idx(paths[images_name], expected_dims=3)
    labels = _read_idx(paths[labels_name], expected_dims=1).astype(np.int64)
    labels.flags.writeable = False
    if images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{paths[images_name]}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) != len(labels):
        raise ValueError(f"{source.name} {split}: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{paths[labels_name]}: label {labels.max()} is not a digit 0..9")
    return images, labels


def _read_idx(path: Path, *, expected_dims: int) -> np.ndarray:
    with open_content(path) as stream:
        return parse_idx(stream.read(), expected_dims=expected_dims, name=str(path))
