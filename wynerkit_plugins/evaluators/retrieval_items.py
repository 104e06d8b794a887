"""Which items cross-modal retrieval ranks: queries, the gallery, their codes, and what counts as relevant.

Shared by the ``retrieval`` evaluator and ``wynerkit retrieve`` (see ``retrieval.py`` for the rules).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from wynerkit import DatasetProvider, EvalContext
from wynerkit.data.loading import fetch
from wynerkit.interfaces import BankedSplit, GallerySplit, IndexedSplit

Mode = Literal["category", "instance"]


def resolve_mode(mode: str, data: DatasetProvider) -> Mode:
    """``mode``, or for ``auto``: instance when ``describe()["pairing"]`` starts with "instance", else category."""
    if mode in ("category", "instance"):
        return mode  # type: ignore[return-value]
    pairing = str(data.describe().get("pairing", ""))
    return "instance" if pairing.lower().startswith("instance") else "category"


def item_keys(split: Any) -> tuple[Tensor, Tensor]:
    """Which x and which y every item holds: bank rows for an ``IndexedSplit``, the item's own index otherwise."""
    if isinstance(split, IndexedSplit):
        return torch.as_tensor(split.x_index).long(), torch.as_tensor(split.y_index).long()
    every = torch.arange(len(split))
    return every, every


def distinct(keys: Tensor) -> tuple[Tensor, Tensor]:
    """The first item of each distinct key (in key order), and which distinct key every item has."""
    unique, which = torch.unique(keys, sorted=True, return_inverse=True)
    items = torch.arange(len(keys))
    first = torch.full((len(unique),), len(keys), dtype=torch.long).scatter_reduce_(0, which, items, "amin")
    return first, which


@dataclass(frozen=True)
class Pairing:
    """Queries (distinct x) and gallery (distinct y) of a split, by the split positions that hold them."""

    query_items: Tensor
    """One split position per query, holding its x (and its partner y)."""
    gallery_items: Tensor
    """One split position per gallery item, holding its y."""
    match: Tensor
    """Per query, the gallery position of the y it is paired with (its first pair's)."""
    query_of_item: Tensor
    gallery_of_item: Tensor

    @classmethod
    def of(cls, split: Any) -> Pairing:
        x_keys, y_keys = item_keys(split)
        query_items, query_of_item = distinct(x_keys)
        gallery_items, gallery_of_item = distinct(y_keys)
        match = gallery_of_item[query_items]
        return cls(query_items, gallery_items, match, query_of_item, gallery_of_item)

    def require_one_class(self, split: Any, name: str) -> None:
        """Category retrieval needs every pair of a query to name one class (checked on a ``BankedSplit``)."""
        if not isinstance(split, BankedSplit):
            return
        item_classes = torch.as_tensor(split.y_labels)[torch.as_tensor(split.y_index).long()]
        query_classes = item_classes[self.query_items]
        mixed = (item_classes != query_classes[self.query_of_item]).nonzero()
        if len(mixed):
            raise ValueError(
                f"category retrieval needs one class per query, but dataset {name!r} pairs the x of test item "
                f"{int(mixed[0])} with y items of several classes"
            )

    def require_one_match(self, name: str) -> None:
        """Instance retrieval needs every pair of a query to hold the same y."""
        mixed = (self.gallery_of_item != self.match[self.query_of_item]).nonzero()
        if len(mixed):
            item = int(mixed[0])
            raise ValueError(
                f"instance retrieval needs one true match per query, but dataset {name!r} pairs the x of test item "
                f"{item} with several y items; use mode: category"
            )


def encode_items(
    run: EvalContext, split: Any, items: Tensor, side: Literal["x", "y"], batch_size: int
) -> tuple[Tensor, Tensor]:
    """q(z|x) or q(z|y) of the given split items (on ``run.device``) and their ``y_label`` (the partner's class)."""
    codes, labels = [], []
    for chunk in items.split(batch_size):
        batch = fetch(split, chunk.tolist())
        data = batch[side].to(run.device)
        codes.append(run.model.encode_z(x=data) if side == "x" else run.model.encode_z(y=data))
        labels.append(torch.as_tensor(batch["y_label"]).long().cpu())
    return torch.cat(codes), torch.cat(labels)


def encode(run: EvalContext, items: Tensor, side: Literal["x", "y"], batch_size: int) -> Tensor:
    """q(z|x) or q(z|y) of a tensor of x or y items (a ``gallery()``, or query files), ``batch_size`` at a time."""
    return torch.cat([run.model.encode_z(**{side: chunk.to(run.device)}) for chunk in items.split(batch_size)])


def require_labels(labels: Tensor, name: str) -> None:
    if bool((labels < 0).any()):
        raise ValueError(
            f"category retrieval needs class labels, but dataset {name!r} has unlabelled items (-1 as y_label); "
            "use mode: instance for paired items, or a labelled dataset"
        )


@dataclass(frozen=True)
class Gallery:
    """The ranked side: q(z|y) of every gallery item, their labels, and how to fetch items to draw them."""

    codes: Tensor
    labels: Tensor
    take: Callable[[Tensor], Tensor]
    """The y data of the given gallery positions."""


def test_gallery(run: EvalContext, test: Any, pairing: Pairing, mode: Mode, batch_size: int) -> Gallery:
    """The gallery of a test split: its ``gallery()`` in category mode when it has one, else its distinct y items."""
    if mode == "category" and isinstance(test, GallerySplit):
        items, labels = test.gallery()
        return Gallery(encode(run, items, "y", batch_size), torch.as_tensor(labels).long().cpu(), items.__getitem__)
    codes, labels = encode_items(run, test, pairing.gallery_items, "y", batch_size)
    return Gallery(codes, labels, lambda positions: fetch(test, pairing.gallery_items[positions].tolist())["y"])


def relevance(mode: Mode, found: Tensor, gallery: Gallery, query_labels: Tensor, match: Tensor) -> Tensor:
    """Which of the ``found`` gallery positions ``[N, K]`` are relevant: same class, or the query's true match."""
    found = found.cpu()
    if mode == "instance":
        return found == match.cpu()[:, None]
    return gallery.labels[found] == query_labels.cpu()[:, None]
