"""Sketchy Extended files: class lists, zero-shot class splits, image folders and the released feature layout.

Everything lives under ``<root>/sketchy/``:

- ``classes_125.txt`` and ``zeroshot_test_classes_eccv2018.txt``, the class lists (data source ``sketchy``).
  A class's label is its 0-based line number in ``classes_125.txt`` (file order, not sorted).
- Images: sketches in ``sketch/tx_000000000000/<class>/``; photos in ``photo/<class>/`` (the 12,500 Sketchy
  photos, i.e. the archive's ``photo/tx_000000000000/<class>/``) and ``EXTEND_image_sketchy/<class>/`` (the
  60,502 photos Liu et al. added for Sketchy Extended, CVPR 2017, under the folder name of their release).
  Files ending in .png, .jpg or .jpeg are listed class by class in ``classes_125.txt`` order and by file
  name within a class, photos of ``photo/`` before those of ``EXTEND_image_sketchy/``.
- Features, as released with SEM-PCYC (Dutta & Akata, CVPR 2019) or as written by
  ``wynerkit data extract-features sketchy``: ``features/split{1,2}/{train,test}_{sketch,image}_{features,paths}.npy``,
  float ``[N, D]`` features and string paths (loaded without pickle); an item's class is the name of
  its path's parent folder.

The two zero-shot splits (train and test classes are disjoint):

- split 1, by its recipe: ``numpy.random.seed(0); train = numpy.random.choice(sorted(classes), 100,
  replace=False)`` over the 125 classes; the other 25 are test;
- split 2, Yelamarthi et al. (ECCV 2018): the 21 classes of ``zeroshot_test_classes_eccv2018.txt`` are
  test, the other 104 train.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np

from wynerkit.atomic import write_bytes_atomic
from wynerkit.datafiles import DataFile, DataSource, require_files
from wynerkit.errors import UsageError

SplitNumber = Literal[1, 2]
Part = Literal["train", "test"]
Kind = Literal["sketch", "image"]
FOLDER = "sketchy"
CLASSES_FILE = "classes_125.txt"
ECCV_FILE = "zeroshot_test_classes_eccv2018.txt"
N_CLASSES = 125
SPLIT1_TRAIN_CLASSES = 100
SKETCH_DIR = "sketch/tx_000000000000"
PHOTO_DIRS = ("photo", "EXTEND_image_sketchy")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
EXTRACTION_RECORD = "extraction.json"
"""Written beside the features by ``extract-features``; its absence marks released features."""

SKETCHY_SOURCE = DataSource(
    name=FOLDER,
    files=(
        DataFile(CLASSES_FILE, sha256="d6e5bc4ae64b8147f7ebf0711aaa528ffad3c88eacd38bb76a86d3bf91e08893"),
        DataFile(ECCV_FILE, sha256="b4251ad75e8a35b5852b6e280c150ca5ad55e832e9bd36553721e17b757e9531"),
    ),
    description="Sketchy Extended class lists: the 125 classes and the 21 zero-shot test classes of ECCV 2018",
    how_to_get=(
        f"not downloadable automatically: write <root>/{FOLDER}/{CLASSES_FILE} with the 125 class folder names of "
        f"the Sketchy database (Sangkloy et al., SIGGRAPH 2016), one per line, and <root>/{FOLDER}/{ECCV_FILE} with "
        "the 21 test classes of Yelamarthi et al. (ECCV 2018) as shipped with SEM-PCYC"
    ),
)


@dataclass(frozen=True)
class ClassLists:
    """The Sketchy classes in file order (a class's label is its index) and the ECCV-2018 test classes."""

    classes: tuple[str, ...]
    eccv_test: tuple[str, ...]


@dataclass(frozen=True)
class ZeroShotSplit:
    """The disjoint train and test classes of one zero-shot split."""

    number: int
    train: tuple[str, ...]
    test: tuple[str, ...]


def read_names(path: Path) -> tuple[str, ...]:
    """The non-empty lines of a class list, stripped; duplicates are an error naming them."""
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: classes listed twice: {duplicates}")
    return names


def load_class_lists(root: Path, *, source: DataSource = SKETCHY_SOURCE) -> ClassLists:
    """The verified class lists under ``<root>/sketchy`` (tests pass a ``source`` with their own checksums)."""
    paths = require_files(source, Path(root))
    classes, eccv = read_names(paths[CLASSES_FILE]), read_names(paths[ECCV_FILE])
    if len(classes) != N_CLASSES:
        raise ValueError(f"{paths[CLASSES_FILE]}: {len(classes)} classes, expected the {N_CLASSES} Sketchy classes")
    unknown = sorted(set(eccv) - set(classes))
    if unknown:
        raise ValueError(f"{paths[ECCV_FILE]}: {unknown} are not among the classes of {paths[CLASSES_FILE]}")
    return ClassLists(classes, eccv)


def split1_train_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """The recipe's 100 training classes in the order it draws them; numpy's global RNG is left as it was."""
    state = np.random.get_state()
    try:
        np.random.seed(0)
        chosen = np.random.choice(sorted(classes), SPLIT1_TRAIN_CLASSES, replace=False)
    finally:
        np.random.set_state(state)
    return tuple(str(name) for name in chosen)


def zero_shot_split(lists: ClassLists, number: SplitNumber) -> ZeroShotSplit:
    """Split 1 (the seeded recipe, 100 / 25) or split 2 (ECCV 2018, 104 / 21); test classes in file order."""
    if number == 1:
        train = split1_train_classes(lists.classes)
    elif number == 2:
        train = tuple(c for c in lists.classes if c not in set(lists.eccv_test))
    else:
        raise ValueError(f"unknown Sketchy zero-shot split {number!r}; the splits are 1 and 2")
    return ZeroShotSplit(number, train, tuple(c for c in lists.classes if c not in set(train)))


def list_images(sketchy_dir: Path, classes: Sequence[str]) -> dict[Kind, list[str]]:
    """Every sketch and photo as a POSIX path relative to ``sketchy_dir``, in the order the module doc gives."""
    sketch_root = sketchy_dir / SKETCH_DIR
    photo_roots = [sketchy_dir / name for name in PHOTO_DIRS if (sketchy_dir / name).is_dir()]
    if not sketch_root.is_dir() or not photo_roots:
        photos = " and/or ".join(f"{sketchy_dir / name}/<class>/" for name in PHOTO_DIRS)
        raise UsageError(f"sketchy: images go in {sketch_root}/<class>/ and {photos}; one of them is missing")
    return {
        "sketch": class_files(sketchy_dir, [sketch_root], classes),
        "image": class_files(sketchy_dir, photo_roots, classes),
    }


def class_files(base: Path, roots: Sequence[Path], classes: Sequence[str]) -> list[str]:
    """The image files of ``<root>/<class>/`` for every root and class, relative to ``base``."""
    known = set(classes)
    for root in roots:
        unknown = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in known)
        if unknown:
            raise UsageError(f"sketchy: {root} has folders that are not Sketchy classes: {unknown}")
    files = [
        path.relative_to(base).as_posix()
        for name in classes
        for root in roots
        if (root / name).is_dir()
        for path in sorted((root / name).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    ]
    if not files:
        raise UsageError(f"sketchy: no .png or .jpg images in the class folders of {', '.join(map(str, roots))}")
    return files


def class_of(path: str) -> str:
    """An item's class: the name of the folder holding it (Windows separators accepted)."""
    return PurePosixPath(path.replace("\\", "/")).parent.name


def features_dir(root: Path) -> Path:
    return Path(root) / FOLDER / "features"


def feature_files(root: Path, number: SplitNumber, part: Part, kind: Kind) -> tuple[Path, Path]:
    """The features and paths files of one split, part and kind in the released layout."""
    folder = features_dir(root) / f"split{number}"
    return folder / f"{part}_{kind}_features.npy", folder / f"{part}_{kind}_paths.npy"


@dataclass(frozen=True)
class FeatureSet:
    """Features float32 ``[N, D]`` with each item's path and class name."""

    features: np.ndarray
    paths: np.ndarray
    classes: np.ndarray


def load_npy(path: Path) -> np.ndarray:
    """An array saved with ``np.save``, never unpickled; missing or pickled files are clear errors."""
    if not path.is_file():
        raise UsageError(
            [
                f"sketchy: missing: {path}",
                "sketchy: to get it: place the released SEM-PCYC features there, or compute approximate ones with "
                "`wynerkit data extract-features sketchy --weights FILE`",
            ]
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(
            f"{path}: not a plain .npy array ({exc}); wynerkit never unpickles data files, so save paths as a "
            "numpy string array (dtype '<U...') rather than Python objects"
        ) from exc


def load_feature_set(root: Path, number: SplitNumber, part: Part, kind: Kind) -> FeatureSet:
    """One features / paths file pair, checked: float ``[N, D]``, finite, one string path per row."""
    features_path, paths_path = feature_files(root, number, part, kind)
    features, paths = load_npy(features_path), load_npy(paths_path)
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
        raise ValueError(
            f"{features_path}: features must be a float array [N, D], found {features.dtype} {list(features.shape)}"
        )
    if paths.ndim != 1 or paths.dtype.kind not in "US":
        raise ValueError(f"{paths_path}: paths must be a 1-D string array, found {paths.dtype} {list(paths.shape)}")
    if len(paths) != len(features):
        raise ValueError(f"{features_path} has {len(features)} rows but {paths_path} has {len(paths)} paths")
    if not np.isfinite(features).all():
        raise ValueError(f"{features_path}: features contain NaN or infinite values")
    paths = paths.astype(str)
    return FeatureSet(features.astype(np.float32, copy=False), paths, np.array([class_of(p) for p in paths], dtype=str))


def save_feature_set(
    root: Path, number: SplitNumber, part: Part, kind: Kind, features: np.ndarray, paths: Sequence[str]
) -> None:
    """Write one features / paths file pair in the released layout (atomically, without pickle)."""
    arrays = (np.asarray(features, dtype=np.float32), np.asarray(paths, dtype=str))
    for path, array in zip(feature_files(root, number, part, kind), arrays, strict=True):
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        write_bytes_atomic(path, buffer.getvalue())
