"""The ``retrieval`` evaluator: cross-modal retrieval with the common code (the paper's sketch-based image retrieval).

Queries are the test split's x items encoded with q(z|x) (``model.encode_z(x=...)``: sketches), the
gallery its y items encoded with q(z|y) (``encode_z(y=...)``: photos); each query ranks the whole
gallery by cosine similarity (``retrieval_metrics``: exact, chunked, ties by gallery index).

Modes (param ``mode``):

- ``category``: a gallery item is relevant when its label is the query's class. Keys
  ``retrieval.p@K`` (one per K in ``k``), ``retrieval.map`` (standard non-interpolated mAP@all),
  ``retrieval.map_interp`` (interpolated, as the authors' code computes it) and
  ``retrieval.queries_without_relevant`` (queries whose class has no gallery item: skipped by both
  mAPs, counted 0 by P@K).
- ``instance``: each query's true match is the y it is paired with. Keys ``retrieval.acc@K`` (one per
  K in ``accuracy_k``): the share of queries whose match is among their top K.
- ``auto`` (default): ``instance`` when the dataset's ``describe()["pairing"]`` starts with
  "instance" (``qmul``: "instance-level: sketch i with edge map i"), else ``category``.

Every mode also gives ``retrieval.queries`` and ``retrieval.gallery``, the numbers ranked (floats),
and draws ``figures/retrieval.png`` like the paper's Figure 3 (``retrieval_figure``): ``figure_queries``
evenly spaced queries, each with its ``figure_top`` results framed green (relevant) or red.
``wynerkit retrieve RUN_DIR`` (``retrieve_command``) ranks the same gallery for queries from files.

Which items: a split that indexes two banks (``IndexedPairs``: ``x_index``, ``y_index``) may repeat
items (each sketch paired with several photos, or a photo drawn for several sketches); the queries are
its distinct x rows and the gallery its distinct y rows, each in bank-row order (the order that breaks
ties). In category mode a split with a ``gallery()`` method returning ``(items, labels)`` supplies the
gallery itself: ``sketchy-features`` gives every test photo there, not only the photos drawn as
partners. Any other split is read as it is: item i gives query i and gallery item i. A query's class is
the label of the y it is paired with (on Sketchy its own class; on add-one digit pairs its digit + 1),
so an x paired with y items of two classes, or in instance mode with two y items, is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, NonNegativeInt, PositiveInt
from torch import Tensor

from wynerkit import BuildContext, ComponentParams, DatasetProvider, EvalContext, hookimpl
from wynerkit.data_loading import fetch
from wynerkit.figures import save_png
from wynerkit.hookspecs import Register
from wynerkit_plugins.evaluators.coherence import chosen_positions
from wynerkit_plugins.evaluators.probe import dataset_name
from wynerkit_plugins.evaluators.retrieval_figure import retrieval_figure
from wynerkit_plugins.evaluators.retrieval_metrics import (
    DEFAULT_CHUNK,
    accuracies,
    match_ranks,
    nearest,
    ranking_scores,
)

Mode = Literal["category", "instance"]
PREFIX = "retrieval."
FIGURE = "retrieval.png"


class RetrievalParams(ComponentParams):
    """Category or instance retrieval, the K of P@K and acc@K, and how many items are ranked at a time."""

    mode: Annotated[
        Literal["auto", "category", "instance"],
        Field(description="category: P@K and mAP by class; instance: acc@K of the paired item; auto: by describe()"),
    ] = "auto"
    k: Annotated[
        tuple[PositiveInt, ...],
        Field(min_length=1, description="P@K for each K, category mode (Sketchy split 1: 100; split 2: 200)"),
    ] = (100,)
    accuracy_k: Annotated[
        tuple[PositiveInt, ...], Field(min_length=1, description="acc@K for each K, instance mode")
    ] = (1, 10)
    chunk_size: Annotated[
        PositiveInt, Field(description="queries ranked at a time (memory: about 30 bytes x chunk_size x gallery size)")
    ] = DEFAULT_CHUNK
    batch_size: Annotated[PositiveInt, Field(description="items encoded per forward pass")] = 512
    max_queries: Annotated[
        PositiveInt | None, Field(description="rank at most this many queries (a seeded random subset); None: all")
    ] = None
    figure_queries: Annotated[
        NonNegativeInt,
        Field(description="queries drawn in figures/retrieval.png with their top results (0: no figure)"),
    ] = 8
    figure_top: Annotated[PositiveInt, Field(description="results drawn per query in the figure")] = 5


def resolve_mode(mode: str, data: DatasetProvider) -> Mode:
    """``mode``, or for ``auto``: instance when ``describe()["pairing"]`` starts with "instance", else category."""
    if mode in ("category", "instance"):
        return mode  # type: ignore[return-value]
    pairing = str(data.describe().get("pairing", ""))
    return "instance" if pairing.lower().startswith("instance") else "category"


def item_keys(split: Any) -> tuple[Tensor, Tensor]:
    """Which x and which y every item holds: bank rows for an indexed split, the item's own index otherwise."""
    if hasattr(split, "x_index") and hasattr(split, "y_index"):
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


def encode_gallery(run: EvalContext, items: Tensor, batch_size: int) -> Tensor:
    """q(z|y) of a ``gallery()`` tensor of y items."""
    return torch.cat([run.model.encode_z(y=chunk.to(run.device)) for chunk in items.split(batch_size)])


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
    if mode == "category" and hasattr(test, "gallery"):
        items, labels = test.gallery()
        return Gallery(encode_gallery(run, items, batch_size), torch.as_tensor(labels).long().cpu(), items.__getitem__)
    codes, labels = encode_items(run, test, pairing.gallery_items, "y", batch_size)
    return Gallery(codes, labels, lambda positions: fetch(test, pairing.gallery_items[positions].tolist())["y"])


def relevance(mode: Mode, found: Tensor, gallery: Gallery, query_labels: Tensor, match: Tensor) -> Tensor:
    """Which of the ``found`` gallery positions ``[N, K]`` are relevant: same class, or the query's true match."""
    found = found.cpu()
    if mode == "instance":
        return found == match.cpu()[:, None]
    return gallery.labels[found] == query_labels.cpu()[:, None]


class RetrievalEvaluator:
    """Implements ``wynerkit.Evaluator``: rank q(z|y) of the test gallery by cosine similarity to q(z|x)."""

    def __init__(self, params: RetrievalParams) -> None:
        self.params = params

    def evaluate(self, run: EvalContext) -> dict[str, float]:
        p = self.params
        test = run.data.split("test")
        name = dataset_name(run.data)
        if len(test) == 0:
            raise ValueError(f"retrieval needs test pairs; dataset {name!r} has an empty test split")
        pairing = Pairing.of(test)
        mode = resolve_mode(p.mode, run.data)
        chosen = chosen_positions(len(pairing.query_items), p.max_queries, run.seed)
        queries, query_labels = encode_items(run, test, pairing.query_items[chosen], "x", p.batch_size)
        match = pairing.match[chosen]
        if mode == "instance":
            pairing.require_one_match(name)
        else:
            self._check_classes(test, pairing, name)
        gallery = test_gallery(run, test, pairing, mode, p.batch_size)
        if mode == "instance":
            ranks = match_ranks(queries, gallery.codes, match.to(queries.device), p.chunk_size)
            metrics = {f"{PREFIX}acc@{k}": value for k, value in accuracies(ranks, p.accuracy_k).items()}
        else:
            require_labels(torch.cat([query_labels, gallery.labels]), name)
            scores = ranking_scores(queries, gallery.codes, query_labels, gallery.labels, p.k, p.chunk_size)
            metrics = {f"{PREFIX}p@{k}": scores.mean_precision(k) for k in sorted(set(p.k))}
            metrics[f"{PREFIX}map"] = scores.mean_average_precision()
            metrics[f"{PREFIX}map_interp"] = scores.mean_average_precision(interpolated=True)
            metrics[f"{PREFIX}queries_without_relevant"] = float(scores.without_relevant)
        metrics[f"{PREFIX}queries"] = float(len(queries))
        metrics[f"{PREFIX}gallery"] = float(len(gallery.codes))
        if p.figure_queries:
            shown = torch.linspace(0, len(chosen) - 1, min(p.figure_queries, len(chosen))).round().long().unique()
            _, found = nearest(queries[shown], gallery.codes, min(p.figure_top, len(gallery.codes)), p.chunk_size)
            marks = relevance(mode, found, gallery, query_labels[shown], match[shown])
            picture = retrieval_figure(
                run.model.x_modality,
                run.model.y_modality,
                fetch(test, pairing.query_items[chosen[shown]].tolist())["x"],
                torch.stack([gallery.take(row) for row in found.cpu()]),
                marks.tolist(),
            )
            save_png(picture, run.figures_dir / FIGURE)
        return metrics

    @staticmethod
    def _check_classes(split: Any, pairing: Pairing, name: str) -> None:
        """Every pair of a query must name the same class (checked where the split exposes ``y_labels``)."""
        if not hasattr(split, "y_labels") or not hasattr(split, "y_index"):
            return
        item_classes = torch.as_tensor(split.y_labels)[torch.as_tensor(split.y_index).long()]
        query_classes = item_classes[pairing.query_items]
        mixed = (item_classes != query_classes[pairing.query_of_item]).nonzero()
        if len(mixed):
            raise ValueError(
                f"category retrieval needs one class per query, but dataset {name!r} pairs the x of test item "
                f"{int(mixed[0])} with y items of several classes"
            )


def make_retrieval(params: RetrievalParams, context: BuildContext) -> RetrievalEvaluator:
    """Cross-modal retrieval of q(z|y) by q(z|x), cosine: P@K and mAP by class, or acc@K of the paired item."""
    del context  # the model, data and seed come with the run
    return RetrievalEvaluator(params)


@hookimpl
def wynerkit_register_evaluators(register: Register) -> None:
    """Register the evaluator ``retrieval``."""
    register("retrieval", make_retrieval, params=RetrievalParams)
