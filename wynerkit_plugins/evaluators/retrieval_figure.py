"""A figure like the paper's Figure 3: each query beside its top-K gallery items, marked correct or not.

One row per query: the query (framed in grey) in a first column set apart from the results, then
its top-K gallery items in rank order, each framed green when it is relevant (its class is the
query's, or it is the query's true match) and red when not; black frames mean unknown (a query read
from a file, whose class is not known). Pictures are what each modality's ``to_grid`` draws for one
item, so images, sketches and feature heatmaps all work.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from wynerkit import Modality
from wynerkit.figures.grid import check_picture, tile
from wynerkit.figures.panels import item_pictures

FRAME = 2
"""Pixel width of the coloured frame around every picture."""
QUERY_COLOUR = (128, 128, 128)
CORRECT_COLOUR = (0, 160, 0)
WRONG_COLOUR = (210, 0, 0)
UNKNOWN_COLOUR = (0, 0, 0)


def framed(picture: np.ndarray, colour: tuple[int, int, int], width: int = FRAME) -> np.ndarray:
    """``picture`` inside a ``width``-pixel frame of ``colour``."""
    check_picture(picture)
    h, w = picture.shape[:2]
    out = np.empty((h + 2 * width, w + 2 * width, 3), dtype=np.uint8)
    out[...] = np.asarray(colour, dtype=np.uint8)
    out[width : width + h, width : width + w] = picture
    return out


def result_colour(correct: bool | None) -> tuple[int, int, int]:
    if correct is None:
        return UNKNOWN_COLOUR
    return CORRECT_COLOUR if correct else WRONG_COLOUR


def retrieval_figure(
    query_modality: Modality,
    gallery_modality: Modality,
    queries: Tensor,
    results: Tensor,
    correct: Sequence[Sequence[bool | None]],
) -> np.ndarray:
    """The figure as ``uint8 [H, W, 3]``: ``queries`` ``[N, ...]``, ``results`` ``[N, K, ...]`` (gallery items).

    ``correct[i][j]`` says whether result j of query i is relevant (None: unknown).
    """
    if len(queries) == 0 or len(results) != len(queries) or len(correct) != len(queries):
        raise ValueError(
            f"need one row of results and of marks per query, got {len(queries)} queries, "
            f"{len(results)} result rows and {len(correct)} mark rows"
        )
    rows = []
    for query, found, marks in zip(item_pictures(query_modality, queries), results, correct, strict=True):
        if len(marks) != len(found):
            raise ValueError(f"need one mark per result, got {len(marks)} marks for {len(found)} results")
        cells = [framed(query, QUERY_COLOUR)]
        cells += [
            framed(item, result_colour(mark))
            for item, mark in zip(item_pictures(gallery_modality, found), marks, strict=True)
        ]
        rows.append(cells)
    return tile(rows, header_col=True)
