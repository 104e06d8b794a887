"""The ``sketchy-features`` dataset: Sketchy Extended sketch / photo feature pairs of the same class.

File layouts and the two zero-shot class splits are in ``sketchy_layout``. Items pair each sketch
with a photo of its class drawn at random (redrawn per epoch), and ``ClassCyclingBatchSampler``
makes batches that cycle through the classes. This plugin also adds
``wynerkit data extract-features sketchy`` (see ``sketchy_extract``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from pydantic import Field

from wynerkit import BuildContext, ComponentParams, NoParams, Split, hookimpl
from wynerkit.data.splits import select_split
from wynerkit.datafiles import DataSource
from wynerkit.hookspecs import Register
from wynerkit_plugins.datasets.sketchy_extract import add_extract_command
from wynerkit_plugins.datasets.sketchy_layout import (
    EXTRACTION_RECORD,
    FOLDER,
    SKETCHY_SOURCE,
    Kind,
    Part,
    SplitNumber,
    feature_files,
    features_dir,
    load_class_lists,
    load_feature_set,
    zero_shot_split,
)
from wynerkit_plugins.shared.indexed_pairs import IndexedPairs, carve_valid

PAIR_STREAM: Mapping[str, int] = {"train": 1, "valid": 2, "test": 3}
SAMPLER_STREAM = 4
"""Spawn keys of the random streams of the pairings and the batch sampler (0 chooses the valid classes)."""
SPLIT_RULES = {1: "seeded recipe: 100 train / 25 test classes", 2: "ECCV 2018: 104 train / 21 test classes"}


class ClassCyclingBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches whose items come from the classes in turn (round robin), so classes are balanced within a batch.

    For each epoch (seeded by ``(seed, epoch)``; call ``set_epoch``) the items of every class are
    shuffled and the classes put in a random order. The epoch's stream then takes the next item of
    each class in that order, round after round, skipping classes that have run out; consecutive runs
    of ``batch_size`` items of the stream are the batches. Every item appears once per epoch, a batch
    holds ``min(batch_size, classes left)`` different classes, and successive batches continue the cycle.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, *, seed: int = 0, drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.labels = np.asarray(labels)
        self.batch_size, self.seed, self.drop_last = batch_size, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def stream(self) -> np.ndarray:
        """This epoch's item order: round r holds the r-th item of every class, classes in this epoch's order."""
        rng = np.random.default_rng(np.random.SeedSequence(entropy=self.seed, spawn_key=(SAMPLER_STREAM, self.epoch)))
        shuffled = rng.permutation(len(self.labels))
        classes, class_of_item = np.unique(self.labels[shuffled], return_inverse=True)
        class_rank = rng.permutation(len(classes))
        by_class = np.argsort(class_of_item, kind="stable")
        counts = np.bincount(class_of_item)
        rounds = np.empty(len(shuffled), dtype=np.int64)
        rounds[by_class] = np.arange(len(shuffled)) - np.repeat(np.cumsum(counts) - counts, counts)
        return shuffled[np.lexsort((class_rank[class_of_item], rounds))]

    def __iter__(self) -> Iterator[list[int]]:
        order = self.stream()
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch.tolist()

    def __len__(self) -> int:
        full, rest = divmod(len(self.labels), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)


@dataclass(frozen=True)
class Bank:
    """All features of one file (sketches or photos) and their class labels."""

    features: torch.Tensor
    labels: np.ndarray


class ClassPairs(IndexedPairs):
    """A split's sketches, each paired with a photo of its class drawn uniformly from the split's photos.

    The draw is seeded by ``(seed, split, epoch)``; ``set_epoch(epoch)`` redraws it so every epoch sees
    new sketch-photo combinations. Labels (both) are the class. ``queries()`` and ``gallery()`` give the
    split's raw sketches and photos for retrieval.
    """

    def __init__(
        self, sketches: Bank, photos: Bank, sketch_rows: np.ndarray, photo_rows: np.ndarray, *, seed: int, stream: int
    ) -> None:
        sketch_labels = sketches.labels[sketch_rows]
        without = sorted(set(sketch_labels.tolist()) - set(photos.labels[photo_rows].tolist()))
        if without:
            raise ValueError(f"sketchy: classes {without} have sketches but no photos to pair them with")
        self.photo_rows = photo_rows[np.argsort(photos.labels[photo_rows], kind="stable")]
        """The split's photos (rows of the photo bank) grouped by class: the pool pairs are drawn from."""
        self._photo_labels = photos.labels[self.photo_rows]
        self._sketch_labels = sketch_labels
        self.seed, self.stream = seed, stream
        super().__init__(
            sketches.features,
            photos.features,
            torch.from_numpy(sketches.labels),
            torch.from_numpy(photos.labels),
            torch.from_numpy(sketch_rows),
            torch.from_numpy(self._draw(0)),
        )

    @property
    def labels(self) -> np.ndarray:
        """The class of every item, in item order."""
        return self._sketch_labels

    def set_epoch(self, epoch: int) -> None:
        """Redraw the photo of every sketch for ``epoch``."""
        self.y_index = torch.from_numpy(self._draw(epoch))

    def _draw(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence(entropy=self.seed, spawn_key=(self.stream, epoch)))
        first = np.searchsorted(self._photo_labels, self._sketch_labels, side="left")
        count = np.searchsorted(self._photo_labels, self._sketch_labels, side="right") - first
        return self.photo_rows[first + (rng.random(len(first)) * count).astype(np.int64)]

    def batch_sampler(self, batch_size: int, *, drop_last: bool = False) -> ClassCyclingBatchSampler:
        """A sampler cycling through this split's classes (use with ``DataLoader(batch_sampler=...)``)."""
        return ClassCyclingBatchSampler(self.labels, batch_size, seed=self.seed, drop_last=drop_last)

    def queries(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's sketches: features ``[N, D]`` and class labels ``[N]``."""
        return self.x[self.x_index], self.x_labels[self.x_index]

    def gallery(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's photos: features ``[M, D]`` and class labels ``[M]``."""
        rows = torch.from_numpy(self.photo_rows)
        return self.y[rows], self.y_labels[rows]


class SketchyFeaturesParams(ComponentParams):
    """The zero-shot split, and the share of its training classes held out for validation."""

    root: Path | None = Field(None, description="data root; default: $WYNERKIT_DATA, else the user cache dir")
    split: SplitNumber = Field(
        1,
        description="class split: 1 = the seeded recipe (100 train / 25 test classes), 2 = ECCV 2018 (104 / 21)",
    )
    valid_fraction: float = Field(
        0.1,
        ge=0,
        lt=0.5,
        description="share of the training classes held out whole as the valid split (unseen classes)",
    )


class SketchyFeatures:
    """Sketch / photo feature pairs of one zero-shot split (implements ``wynerkit.DatasetProvider``).

    x is a sketch's feature vector, y that of a photo of the same class (see ``ClassPairs``); both
    labels are the class's index in ``classes_125.txt``. The valid split holds whole training classes
    out (chosen by the run seed), so validation, like the test, measures classes the model never saw.
    For class-cycling batches train with ``DataLoader(split, batch_sampler=split.batch_sampler(B),
    collate_fn=wynerkit.data.batching.collate_pairs)`` and call ``set_epoch`` on the split and the sampler.
    """

    def __init__(
        self, params: SketchyFeaturesParams, root: Path, seed: int, *, source: DataSource = SKETCHY_SOURCE
    ) -> None:
        lists = load_class_lists(root, source=source)
        self.params, self.seed = params, seed
        self.class_names = lists.classes
        self.zero_shot = zero_shot_split(lists, params.split)
        banks = {
            (part, kind): self._bank(root, part, kind, lists.classes)
            for part in ("train", "test")
            for kind in ("sketch", "image")
        }
        self.x_shape: tuple[int, ...] = (banks["train", "sketch"].features.shape[1],)
        self.y_shape: tuple[int, ...] = (banks["train", "image"].features.shape[1],)
        for (part, kind), bank in banks.items():
            want = self.x_shape if kind == "sketch" else self.y_shape
            if bank.features.shape[1:] != want:
                where = feature_files(root, params.split, part, kind)[0]
                raise ValueError(
                    f"{where}: {bank.features.shape[1]}-d features but the train {kind} features are {want[0]}-d"
                )
        train_classes = np.unique(banks["train", "sketch"].labels)
        self.valid_labels = train_classes[carve_valid(len(train_classes), params.valid_fraction, seed)[1]]
        sketches, photos = banks["train", "sketch"], banks["train", "image"]
        self._splits = {
            name: ClassPairs(
                sketches,
                photos,
                np.flatnonzero(np.isin(sketches.labels, self.valid_labels) == held),
                np.flatnonzero(np.isin(photos.labels, self.valid_labels) == held),
                seed=seed,
                stream=PAIR_STREAM[name],
            )
            for name, held in (("train", False), ("valid", True))
        }
        sketches, photos = banks["test", "sketch"], banks["test", "image"]
        self._splits["test"] = ClassPairs(
            sketches,
            photos,
            np.arange(len(sketches.labels)),
            np.arange(len(photos.labels)),
            seed=seed,
            stream=PAIR_STREAM["test"],
        )
        record = features_dir(root) / EXTRACTION_RECORD
        self.features_origin: Any = (
            json.loads(record.read_text())
            if record.is_file()
            else "released SEM-PCYC features (no extraction.json beside them)"
        )

    def _bank(self, root: Path, part: Part, kind: Kind, classes: Sequence[str]) -> Bank:
        """One feature file with class labels; its classes must belong to the split's ``part`` classes."""
        number = self.params.split
        loaded = load_feature_set(root, number, part, kind)
        where = feature_files(root, number, part, kind)[1]
        if len(loaded.paths) == 0:
            raise ValueError(f"{where}: no items")
        allowed = self.zero_shot.train if part == "train" else self.zero_shot.test
        outside = sorted(set(loaded.classes.tolist()) - set(allowed))
        if outside:
            raise ValueError(f"{where}: classes {outside} are not {part} classes of zero-shot split {number}")
        label = {name: i for i, name in enumerate(classes)}
        return Bank(torch.from_numpy(loaded.features), np.array([label[c] for c in loaded.classes], dtype=np.int64))

    def split(self, name: Split) -> ClassPairs:
        return select_split(self._splits, name)

    def describe(self) -> dict[str, Any]:
        """Facts for the run summary: the split's classes, sizes, pairing and where the features came from."""
        return {
            "name": "sketchy-features",
            "split": self.params.split,
            "split_rule": SPLIT_RULES[self.params.split],
            "valid_classes": [self.class_names[i] for i in self.valid_labels],
            "classes": {name: len(np.unique(items.labels)) for name, items in self._splits.items()},
            "sizes": {name: len(items) for name, items in self._splits.items()},
            "gallery_sizes": {name: len(items.photo_rows) for name, items in self._splits.items()},
            "x_shape": list(self.x_shape),
            "y_shape": list(self.y_shape),
            "features": self.features_origin,
            "pairing": "each sketch with a photo of its class drawn uniformly (seeded; set_epoch redraws)",
            "seed": self.seed,
            "stand_in": False,
        }


def make_sketchy_features(params: SketchyFeaturesParams, context: BuildContext) -> SketchyFeatures:
    """Sketchy Extended VGG-16 features: sketch / photo pairs of the same class, zero-shot splits 1 and 2."""
    return SketchyFeatures(params, params.root or context.data_root, context.seed)


def sketchy_source(params: NoParams, context: BuildContext) -> DataSource:
    """Sketchy Extended class lists (125 classes, 21 ECCV-2018 test classes), manual download."""
    return SKETCHY_SOURCE


@hookimpl
def wynerkit_register_data_sources(register: Register) -> None:
    """Register the ``sketchy`` data source (the class lists)."""
    register(FOLDER, sketchy_source)


@hookimpl
def wynerkit_register_datasets(register: Register) -> None:
    """Register the ``sketchy-features`` dataset."""
    register("sketchy-features", make_sketchy_features, params=SketchyFeaturesParams)


@hookimpl
def wynerkit_register_commands(cli: typer.Typer) -> None:
    """Add ``extract-features`` to the core's ``data`` command group."""
    add_extract_command(cli)
