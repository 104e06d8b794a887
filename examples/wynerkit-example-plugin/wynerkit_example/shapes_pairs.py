"""The ``shapes-pairs`` dataset: x is the outline of a shape, y the same shape filled.

It reads real files from the data root, through the ``shapes-pairs`` data source that lists them
with their SHA-256: three gzipped PGM images (one per split, a column of x | y tiles) and a JSON of
class labels. The shape, its size and position are the pair's *common* information; each view's
grey level is its own (*local*).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from wynerkit import BuildContext, ComponentParams, Split
from wynerkit.datafiles import open_content, require_files
from wynerkit_example.paired_split import PairedSplit
from wynerkit_example.shapes_files import CLASSES, LABELS_FILE, SPLIT_FILES, TILE
from wynerkit_example.shapes_source import current_source


class ShapesPairsParams(ComponentParams):
    """What a spec may set for ``shapes-pairs``; any other field is an error (``extra="forbid"``)."""

    root: Annotated[Path | None, Field(description="data root; None: $WYNERKIT_DATA, else the per-user one")] = None


def read_sheet(path: Path, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x and y of ``n`` pairs, float32 ``[n, 1, 16, 16]`` in [-1, 1], from a (gzipped) PGM sheet."""
    with open_content(path) as stream:  # decompresses when the stored file is NAME.gz
        image = Image.open(io.BytesIO(stream.read()))
        image.load()
    if image.mode != "L" or image.size != (2 * TILE, n * TILE):
        raise ValueError(f"{path}: expected a {2 * TILE}x{n * TILE} greyscale image, found {image.mode} {image.size}")
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1)
    tiles = pixels.reshape(n, 1, TILE, 2 * TILE)
    return tiles[..., :TILE].contiguous(), tiles[..., TILE:].contiguous()


class ShapesPairs:
    """A ``wynerkit.DatasetProvider`` over the verified files of the ``shapes-pairs`` source."""

    x_shape: tuple[int, ...] = (1, TILE, TILE)
    y_shape: tuple[int, ...] = (1, TILE, TILE)

    def __init__(self, root: Path) -> None:
        self.source = current_source()
        paths = require_files(self.source, root)  # verified paths; else one line per bad file and how to get it
        labels = json.loads(paths[LABELS_FILE].read_bytes())
        self._splits: dict[str, PairedSplit] = {}
        for split, name in SPLIT_FILES.items():
            split_labels = torch.tensor(labels[split], dtype=torch.long)
            self._splits[split] = PairedSplit(*read_sheet(paths[name], len(split_labels)), split_labels)

    def split(self, name: Split) -> PairedSplit:
        """The items of one split; the splits hold different shapes."""
        if name not in self._splits:
            raise ValueError(f"unknown split {name!r}; expected one of: {', '.join(self._splits)}")
        return self._splits[name]

    def describe(self) -> dict[str, Any]:
        """Facts for the run summary; ``name``, ``pairing``, ``offset`` and ``stand_in`` are read by wynerkit."""
        return {
            "name": "shapes-pairs",
            "pairing": "instance: the outline and the filled version of one shape",
            "offset": 0,  # y's label equals x's
            "stand_in": False,
            "classes": list(CLASSES),
            "sizes": {split: len(items) for split, items in self._splits.items()},
            "data_source": self.source.name,
            "checksums_verified": True,
        }


def build_shapes_pairs(params: ShapesPairsParams, context: BuildContext) -> ShapesPairs:
    """Outlines (x) and filled shapes (y), 16x16 greyscale, from checksummed files; labels are 4 classes."""
    return ShapesPairs(params.root or context.data_root)
