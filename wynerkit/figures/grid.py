"""Tiling uint8 pictures into figure grids: cells of mixed sizes, thin separators, set-apart headers.

A figure cell is whatever ``Modality.to_grid`` draws for one item, so cells of one grid can differ
in size (a 28x28 MNIST digit beside a 32x32 SVHN one, or a heatmap strip). Every cell is centred
in a common box; boxes are separated by thin lines, and a header row or first column (references,
conditioning inputs) sits behind a wider gap so that it reads as "not generated".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

LINE = 1
"""Pixel width of the separator lines between (and around) cells."""
GAP = 4
"""Extra pixels between a header row / first column and the body of a grid."""
BACKGROUND = 255
"""Grey level of separators, gaps and the padding around cells smaller than their box."""

Cell = np.ndarray | None
"""One picture ``uint8 [h, w, 3]``, or None for an empty box (e.g. the corner of a header row)."""


def check_picture(image: object, what: str = "picture") -> np.ndarray:
    """The image itself if it is ``uint8 [h, w, 3]``; a clear error beats a garbled figure."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        described = (
            f"{image.dtype} array of shape {list(image.shape)}" if isinstance(image, np.ndarray) else type(image)
        )
        raise ValueError(f"{what} must be a uint8 array [h, w, 3], got {described}")
    return image


@dataclass(frozen=True)
class GridLayout:
    """Where each box of a ``rows x cols`` grid lies; shared by ``tile`` and by readers of a figure."""

    rows: int
    cols: int
    cell_h: int
    cell_w: int
    header_row: bool = False
    header_col: bool = False
    line: int = LINE
    gap: int = GAP

    def _offset(self, index: int, size: int, header: bool) -> int:
        return self.line + index * (size + self.line) + (self.gap if header and index > 0 else 0)

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """Top-left pixel of box (row, col)."""
        return self._offset(row, self.cell_h, self.header_row), self._offset(col, self.cell_w, self.header_col)

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width of the whole grid."""
        return self._offset(self.rows, self.cell_h, self.header_row), self._offset(
            self.cols, self.cell_w, self.header_col
        )

    def box(self, image: np.ndarray, row: int, col: int) -> np.ndarray:
        """The pixels of box (row, col) of a tiled ``image`` (a view)."""
        top, left = self.origin(row, col)
        return image[top : top + self.cell_h, left : left + self.cell_w]


def centre(image: np.ndarray, height: int, width: int, fill: int = BACKGROUND) -> np.ndarray:
    """``image`` centred on a ``height x width`` canvas of ``fill`` (extra pixel, if odd, right/below)."""
    h, w = image.shape[:2]
    if h > height or w > width:
        raise ValueError(f"a {h}x{w} picture does not fit a {height}x{width} box")
    canvas = np.full((height, width, 3), fill, dtype=np.uint8)
    top, left = (height - h) // 2, (width - w) // 2
    canvas[top : top + h, left : left + w] = image
    return canvas


def layout_for(
    cells: Sequence[Sequence[Cell]], *, header_row: bool = False, header_col: bool = False, line: int = LINE
) -> GridLayout:
    """The layout ``tile`` uses for ``cells``: boxes as large as the largest cell in each direction."""
    widths = {len(row) for row in cells}
    if not cells or widths == {0} or len(widths) != 1:
        raise ValueError(f"a grid needs rows of one common, non-zero length; got row lengths {sorted(widths)}")
    present = [check_picture(c, "a grid cell") for row in cells for c in row if c is not None]
    if not present:
        raise ValueError("a grid needs at least one picture")
    return GridLayout(
        rows=len(cells),
        cols=widths.pop(),
        cell_h=max(c.shape[0] for c in present),
        cell_w=max(c.shape[1] for c in present),
        header_row=header_row,
        header_col=header_col,
        line=line,
    )


def tile(
    cells: Sequence[Sequence[Cell]], *, header_row: bool = False, header_col: bool = False, line: int = LINE
) -> np.ndarray:
    """Lay ``cells[row][col]`` out as one picture; a header row / first column is set apart by ``GAP``."""
    layout = layout_for(cells, header_row=header_row, header_col=header_col, line=line)
    grid = np.full((*layout.shape, 3), BACKGROUND, dtype=np.uint8)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            if cell is not None:
                layout.box(grid, r, c)[...] = centre(cell, layout.cell_h, layout.cell_w)
    return grid


def join(images: Sequence[np.ndarray], direction: Literal["across", "down"], gap: int) -> np.ndarray:
    """Pictures side by side ("across") or stacked ("down"), centred on the other axis, ``gap`` apart."""
    if not images:
        raise ValueError("join needs at least one picture")
    pictures = [check_picture(image) for image in images]
    axis = 1 if direction == "across" else 0
    other = max(p.shape[1 - axis] for p in pictures)
    parts: list[np.ndarray] = []
    for i, picture in enumerate(pictures):
        if i:
            spacer_shape = [other, other]
            spacer_shape[axis] = gap
            parts.append(np.full((*spacer_shape, 3), BACKGROUND, dtype=np.uint8))
        size = list(picture.shape[:2])
        size[1 - axis] = other
        parts.append(centre(picture, *size))
    return np.concatenate(parts, axis=axis)


__all__ = ["BACKGROUND", "GAP", "LINE", "Cell", "GridLayout", "centre", "check_picture", "join", "layout_for", "tile"]
