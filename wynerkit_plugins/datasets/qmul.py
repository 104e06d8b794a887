"""The ``qmul`` dataset: QMUL fine-grained sketch-based image retrieval pairs (real free-hand sketches).

Yu et al., "Sketch Me That Shoe" (CVPR 2016) released, per product set, four MATLAB v5 files
``<set>_{sketch,edge}_db_{train,test}.mat``, each with one key ``data``: uint8 ``[N, 256, 256]`` on a
white background. Sketch i was drawn from the product photo whose edge map is edge map i, so pairs
are instance-level: x = sketch i, y = edge map i, and both labels are i (the row in the file).

Which sets exist is data, not code: the dataset reads a set ``<set>`` when a data source named
``qmul-<set>`` is registered (by this plugin or any other) listing the set's four files with their
checksums, and refuses any other set. This plugin registers ``qmul-shoes`` and ``qmul-chairs`` with
the SHA-256 of the files as distributed with this project's reference data; no checksums are known
here for handbags, so a plugin that has them adds ``qmul-handbags`` and ``set: handbags`` works.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.io
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from pydantic import Field, PositiveInt

from wynerkit import BuildContext, ComponentParams, NoParams, Split, hookimpl
from wynerkit.data.splits import select_split
from wynerkit.datafiles import DataFile, DataSource, registered_sources, require_files
from wynerkit.errors import UsageError
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.indexed_pairs import IndexedPairs, carve_valid

FileSplit = Literal["train", "test"]
MAT_KEY = "data"
HOW_TO_GET = (
    "not downloadable automatically: the files come with Yu et al., 'Sketch Me That Shoe' (CVPR 2016; research "
    "use, cite the paper); place them as <root>/qmul/{set}/{set}_{{sketch,edge}}_db_{{train,test}}.mat"
)
SHA256 = {
    "shoes": {
        "shoes_sketch_db_train.mat": "7e6d238778fed20226b9fa4e93747555862a5f695305e865fa90c65a22469dbe",
        "shoes_edge_db_train.mat": "ca1744d77c1674862e67d2f3fa4b07ff4d4a587017a4096275e977d3c7d73cc4",
        "shoes_sketch_db_test.mat": "5f66f4801287c79600c7272c1072a878046536d1d24555230493f4aec4c2c065",
        "shoes_edge_db_test.mat": "34ddbcec5f14e0b358b537a82063a2026156da0f079a8a39e0839ea475369fd3",
    },
    "chairs": {
        "chairs_sketch_db_train.mat": "6d50d1aef109c7514439e1527735455596728aa973e2914e64a8850789d8f89f",
        "chairs_edge_db_train.mat": "4f21547d8c4466fcd86746d003ac148aa26bee9e834bfc341a40c62318b1c6a2",
        "chairs_sketch_db_test.mat": "ebe92e8826ffc2011ad420e94a9bb5cffbe2ea0fc72908480c062909d77bc237",
        "chairs_edge_db_test.mat": "d429cd73c92c1a6ceef3262f18a0c9acc135a4e8136fa04fbdd0bf4bc7a1be8a",
    },
}


def qmul_source(set_name: str, checksums: dict[str, str]) -> DataSource:
    """The data source of one QMUL set in ``<root>/qmul/<set>/`` with the given SHA-256 per file name."""
    return DataSource(
        name=f"qmul-{set_name}",
        subdir=f"qmul/{set_name}",
        files=tuple(DataFile(name=name, sha256=digest) for name, digest in checksums.items()),
        description=f"QMUL {set_name}: free-hand sketches and product edge maps, four .mat files, manual download",
        how_to_get=HOW_TO_GET.format(set=set_name),
    )


QMUL_SOURCES = {set_name: qmul_source(set_name, checksums) for set_name, checksums in SHA256.items()}
SOURCE_PREFIX = "qmul-"


def set_sources(context: BuildContext) -> dict[str, DataSource]:
    """Set -> its verified data source: every registered data source named ``qmul-<set>``."""
    return {
        name.removeprefix(SOURCE_PREFIX): source
        for name, source in registered_sources(context).items()
        if name.startswith(SOURCE_PREFIX)
    }


def file_names(set_name: str, split: FileSplit) -> tuple[str, str]:
    """The sketch and edge-map file names of one set and split."""
    return f"{set_name}_sketch_db_{split}.mat", f"{set_name}_edge_db_{split}.mat"


def read_mat_images(path: Path) -> np.ndarray:
    """The uint8 ``[N, H, H]`` array under key ``data`` of a MATLAB file; a ValueError naming what was found."""
    try:
        contents = scipy.io.loadmat(path)
    # scipy raises IndexError on files shorter than a MATLAB header, NotImplementedError on v7.3 (HDF5)
    except (ValueError, OSError, IndexError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        raise ValueError(f"{path}: not a readable MATLAB v5 file ({type(exc).__name__}: {exc})") from exc
    if MAT_KEY not in contents:
        keys = sorted(k for k in contents if not k.startswith("__"))
        raise ValueError(f"{path}: no key {MAT_KEY!r}; the file holds {keys}")
    data = contents[MAT_KEY]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 3 or data.shape[1] != data.shape[2]:
        found = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: {MAT_KEY!r} must be uint8 [N, H, H] (square images), found {found}")
    if data.shape[0] == 0:
        raise ValueError(f"{path}: {MAT_KEY!r} holds no images")
    return np.ascontiguousarray(data)  # MATLAB stores column-major


def load_qmul(root: Path, set_name: str, split: FileSplit, *, source: DataSource) -> tuple[np.ndarray, np.ndarray]:
    """One set and split as uint8 sketches and edge maps, both ``[N, 256, 256]``; row i of each is pair i.

    Files are verified against ``source``, which must list them (a UsageError naming the source if not).
    """
    if split not in ("train", "test"):
        raise ValueError(f"unknown QMUL split {split!r}; the files hold 'train' and 'test'")
    names = file_names(set_name, split)
    unlisted = [name for name in names if name not in {file.name for file in source.files}]
    if unlisted:
        raise UsageError(
            f"data source {source.name!r} lists no {', '.join(unlisted)}; a qmul-<set> source lists "
            "<set>_{sketch,edge}_db_{train,test}.mat with their checksums"
        )
    found = require_files(source, Path(root), list(names))
    sketch_path, edge_path = (found[name] for name in names)
    sketches, edges = read_mat_images(sketch_path), read_mat_images(edge_path)
    if sketches.shape != edges.shape:
        raise ValueError(
            f"qmul {set_name} {split}: sketches {list(sketches.shape)} in {sketch_path} but edge maps "
            f"{list(edges.shape)} in {edge_path}; sketch i must pair with edge map i"
        )
    return sketches, edges


def to_model_range(images: np.ndarray, size: int, invert: bool) -> torch.Tensor:
    """uint8 ``[N, H, H]`` -> float32 ``[N, 1, size, size]`` in [-1, 1]; inverted, strokes are high and paper -1."""
    t = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)
    if invert:
        t = 1.0 - t
    if t.shape[-1] != size:  # antialiasing averages the thin strokes in instead of skipping them
        t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return t.mul_(2.0).sub_(1.0).clamp_(-1.0, 1.0)


class QmulParams(ComponentParams):
    """Which QMUL set, the image size and polarity, and the share of training pairs held out."""

    root: Path | None = Field(None, description="data root; default: $WYNERKIT_DATA, else the user cache dir")
    set: str = Field(
        description="product set with a registered data source qmul-<set>: built in, shoes (304/115 pairs) and "
        "chairs (200/97)"
    )
    size: PositiveInt = Field(64, description="side of the square images after antialiased bilinear resizing")
    invert: bool = Field(True, description="map the white background to -1 so strokes and edges are positive")
    valid_fraction: float = Field(0.1, ge=0, lt=0.5, description="share of the training pairs held out as valid")


class Qmul:
    """QMUL sketch / edge-map pairs (implements ``wynerkit.DatasetProvider``); all splits held in memory."""

    def __init__(self, params: QmulParams, root: Path, seed: int, *, source: DataSource) -> None:
        self.params, self.seed, self.source = params, seed, source
        self.x_shape: tuple[int, ...] = (1, params.size, params.size)
        self.y_shape: tuple[int, ...] = (1, params.size, params.size)
        train = load_qmul(root, params.set, "train", source=source)
        test = load_qmul(root, params.set, "test", source=source)
        train_rows, valid_rows = carve_valid(len(train[0]), params.valid_fraction, seed)
        self._splits = {
            "train": self._pairs(train, train_rows),
            "valid": self._pairs(train, valid_rows),
            "test": self._pairs(test, np.arange(len(test[0]))),
        }

    def _pairs(self, images: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> IndexedPairs:
        """The pairs of ``rows`` of one file pair; each item's labels are its row (instance) index."""
        sketches, edges = (to_model_range(a[rows], self.params.size, self.params.invert) for a in images)
        instance = torch.from_numpy(rows).long()
        local = torch.arange(len(rows))
        return IndexedPairs(sketches, edges, instance, instance, local, local)

    def split(self, name: Split) -> IndexedPairs:
        return select_split(self._splits, name)

    def read_x(self, path: Path) -> torch.Tensor:
        """A sketch image file as the x items are made: grey, resized, inverted as ``invert`` says; ``[1, 1, S, S]``."""
        try:
            with Image.open(path) as opened:
                grey = np.array(opened.convert("L"), dtype=np.uint8)  # a writable copy for torch
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"not an image file ({exc})") from None
        if grey.shape[0] != grey.shape[1]:  # the dataset's images are square; stretching would distort the sketch
            raise ValueError(f"the sketch is {grey.shape[1]}x{grey.shape[0]}; crop or pad it to a square first")
        return to_model_range(grey[None], self.params.size, self.params.invert)

    def describe(self) -> dict[str, Any]:
        """Facts for the run summary: these are real QMUL sketches, paired by instance."""
        p = self.params
        return {
            "name": "qmul",
            "set": p.set,
            "sizes": {name: len(items) for name, items in self._splits.items()},
            "x_shape": list(self.x_shape),
            "y_shape": list(self.y_shape),
            "invert": p.invert,
            "valid_fraction": p.valid_fraction,
            "seed": self.seed,
            "source": "real QMUL free-hand sketches (x) and product edge maps (y), Yu et al., CVPR 2016",
            "pairing": "instance-level: sketch i with edge map i; labels are the row index in the source file",
            "data_source": self.source.name,
            "checksums_verified": True,
            "stand_in": False,
        }


def make_qmul(params: QmulParams, context: BuildContext) -> Qmul:
    """QMUL fine-grained SBIR: real free-hand sketches paired with product edge maps (any set with a data source)."""
    sources = set_sources(context)
    if params.set not in sources:
        raise UsageError(
            f"data.set: {params.set!r} has no verified data source; sets with one: {', '.join(sorted(sources))} "
            f"(a plugin adds this one by registering a data source named '{SOURCE_PREFIX}{params.set}')"
        )
    return Qmul(params, params.root or context.data_root, context.seed, source=sources[params.set])


def constant_source(source: DataSource) -> Callable[[NoParams, BuildContext], DataSource]:
    """A data-source factory that returns ``source``."""

    def factory(params: NoParams, context: BuildContext) -> DataSource:
        return source

    return factory


@hookimpl
def wynerkit_register_data_sources(register: Register) -> None:
    """Register ``qmul-shoes`` and ``qmul-chairs``: the sets the ``qmul`` dataset reads without other plugins."""
    for source in QMUL_SOURCES.values():
        register(source.name, constant_source(source), summary=source.description)


@hookimpl
def wynerkit_register_datasets(register: Register) -> None:
    """Register the ``qmul`` dataset."""
    register("qmul", make_qmul, params=QmulParams)
