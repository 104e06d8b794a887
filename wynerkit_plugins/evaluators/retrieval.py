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

from typing import Annotated, Literal

import torch
import typer
from pydantic import Field, NonNegativeInt, PositiveInt

from wynerkit import BuildContext, ComponentParams, EvalContext, hookimpl
from wynerkit.data.loading import evenly_spaced, fetch
from wynerkit.figures.panels import save_png
from wynerkit.hookspecs import Register
from wynerkit.plugins import PluginHost
from wynerkit_plugins.evaluators.retrieval_figure import retrieval_figure
from wynerkit_plugins.evaluators.retrieval_items import (
    Pairing,
    encode_items,
    relevance,
    require_labels,
    resolve_mode,
    test_gallery,
)
from wynerkit_plugins.evaluators.retrieval_metrics import (
    DEFAULT_CHUNK,
    accuracies,
    match_ranks,
    nearest,
    ranking_scores,
)
from wynerkit_plugins.evaluators.retrieve_command import add_retrieve_command
from wynerkit_plugins.shared.evaluated_items import chosen_positions, dataset_name

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
            pairing.require_one_class(test, name)
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
            shown = torch.tensor(evenly_spaced(chosen, p.figure_queries))
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


def make_retrieval(params: RetrievalParams, context: BuildContext) -> RetrievalEvaluator:
    """Cross-modal retrieval of q(z|y) by q(z|x), cosine: P@K and mAP by class, or acc@K of the paired item."""
    del context  # the model, data and seed come with the run
    return RetrievalEvaluator(params)


@hookimpl
def wynerkit_register_commands(cli: typer.Typer, host: PluginHost) -> None:
    """Add ``wynerkit retrieve``."""
    add_retrieve_command(cli, host)


@hookimpl
def wynerkit_register_evaluators(register: Register) -> None:
    """Register the evaluator ``retrieval``."""
    register("retrieval", make_retrieval, params=RetrievalParams)
