"""Tables the CLI prints, readable at any terminal width.

A table is printed as a table only when every cell fits on one line at the console's width (rich
honours ``$COLUMNS``); otherwise each row becomes a block of ``header: value`` lines, values wrapped
at spaces only, so no column is squeezed to nothing and no header or value is cut.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text


def table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The width of the rich table with every cell on one line: each column padded by 1, plus its borders."""
    widest = [max(cell_len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    return sum(widest) + 3 * len(headers) + 1


def record_blocks(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Each row as ``header: value`` lines, a blank line before each; long values wrap under themselves."""
    label = max(len(header) for header in headers) + 2
    value_width = max(width - label, 20)  # below this a wrapped value is harder to read than an overlong line
    lines = []
    for row in rows:
        lines.append("")
        for header, value in zip(headers, row, strict=True):
            wrapped = textwrap.wrap(value, value_width, break_long_words=False, break_on_hyphens=False) or [""]
            lines.append(f"{header + ':':<{label}}{wrapped[0]}")
            lines += [" " * label + more for more in wrapped[1:]]
    return lines


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right_aligned: Sequence[str] = (),
    console: Console | None = None,
) -> None:
    """Print ``title``, then ``rows`` under ``headers``: a table if it fits the console's width, else blocks."""
    console = console or Console(highlight=False)
    console.print(Text(title), soft_wrap=True)  # not the table's title, which rich would wrap to the table's width
    if table_width(headers, rows) <= console.width:
        table = Table()
        for header in headers:
            table.add_column(Text(header), no_wrap=True, justify="right" if header in right_aligned else "left")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # Text: a "[...]" in a value is shown, not read as markup
        console.print(table)
        return
    for line in record_blocks(headers, rows, console.width):
        console.print(Text(line), soft_wrap=True)
