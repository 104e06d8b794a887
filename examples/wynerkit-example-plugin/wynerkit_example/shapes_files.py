"""The files of the ``shapes-pairs`` data source, drawn deterministically with integer arithmetic.

A real dataset's files come from somewhere else; this example makes its own so that anyone can
publish them (``python -m wynerkit_example.publish_shapes FOLDER``) and get byte-identical content,
whose SHA-256 the data source lists. The files, under ``FOLDER``:

- ``train.pgm.gz``, ``valid.pgm.gz``, ``test.pgm.gz``: one gzipped binary PGM image per split, 32
  pixels wide and 16 per pair high; row of tiles i is pair i: x (the outline of a shape, left 16x16
  tile) and y (the same shape filled, right tile). Background 0; each tile has its own grey level.
- ``labels.json``: the class names and, per split, the class index of each pair.

Every shape is a circle, square, diamond or triangle of radius 3, 4 or 5 centred on one of 9 points
(108 shapes); of each class's 27 shapes, 21 are in train, 3 in valid and 3 in test.
"""

from __future__ import annotations

import gzip
import json
from itertools import product
from pathlib import Path

import numpy as np

CLASSES = ("circle", "square", "diamond", "triangle")
TILE = 16
RADII = (3, 4, 5)
CENTRES = (6, 8, 10)
SPLIT_FILES = {"train": "train.pgm", "valid": "valid.pgm", "test": "test.pgm"}
LABELS_FILE = "labels.json"


def filled(shape: int, radius: int, centre_x: int, centre_y: int) -> np.ndarray:
    """A bool ``[16, 16]`` mask of the shape (y grows downwards; the triangle points up)."""
    dy, dx = np.mgrid[0:TILE, 0:TILE]
    dx, dy = dx - centre_x, dy - centre_y
    masks = (
        dx * dx + dy * dy <= radius * radius,
        np.maximum(abs(dx), abs(dy)) <= radius,
        abs(dx) + abs(dy) <= radius,
        (abs(dy) <= radius) & (2 * abs(dx) <= dy + radius),
    )
    return masks[shape]


def outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` that have a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inside


def split_of(variant: int) -> str:
    """Which split one of a class's 27 variants belongs to: 7 of every 9 train, then valid, then test."""
    return {7: "valid", 8: "test"}.get(variant % 9, "train")


def draw_pairs() -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """Per split: the uint8 ``[16, 32]`` rows of tiles (x | y) and their class indices."""
    pairs: dict[str, tuple[list[np.ndarray], list[int]]] = {split: ([], []) for split in SPLIT_FILES}
    variants = list(product(RADII, CENTRES, CENTRES))
    for index, (shape, (radius, centre_x, centre_y)) in enumerate(product(range(len(CLASSES)), variants)):
        mask = filled(shape, radius, centre_x, centre_y)
        x_grey, y_grey = 128 + (53 * index) % 128, 128 + (97 * index) % 128  # each view's own grey level
        row = np.concatenate([outline(mask) * x_grey, mask * y_grey], axis=1).astype(np.uint8)
        rows, labels = pairs[split_of(index % len(variants))]
        rows.append(row)
        labels.append(shape)
    return pairs


def encode_pgm(image: np.ndarray) -> bytes:
    """A binary (P5) PGM file of a uint8 ``[H, W]`` image."""
    height, width = image.shape
    return b"P5\n%d %d\n255\n" % (width, height) + image.tobytes()


def shapes_contents() -> dict[str, bytes]:
    """File name -> content (the PGMs uncompressed, as their checksums are taken)."""
    pairs = draw_pairs()
    contents = {name: encode_pgm(np.concatenate(pairs[split][0])) for split, name in SPLIT_FILES.items()}
    labels = {"classes": list(CLASSES), **{split: pairs[split][1] for split in SPLIT_FILES}}
    contents[LABELS_FILE] = json.dumps(labels, separators=(",", ":")).encode()
    return contents


def write_shapes_files(folder: Path) -> list[Path]:
    """Write the files as they are published (the PGMs gzipped); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in shapes_contents().items():
        stored = (name + ".gz", gzip.compress(content, mtime=0)) if name.endswith(".pgm") else (name, content)
        path = folder / stored[0]
        path.write_bytes(stored[1])
        written.append(path)
    return written
