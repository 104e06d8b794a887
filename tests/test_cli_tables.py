"""Tables the CLI prints stay readable at any width: a table when every cell fits, else one block per row.

Before, rich squeezed the prose column of ``plugins list`` to nothing at 80 columns and cut the headers
and paths of ``data info`` (``pres…``, ``verif…``).
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from wynerkit.cli.tables import print_table

BORDERS = ("┃", "│")  # of the header row, of the other rows


def printed(title: str, headers: list[str], rows: list[list[str]], width: int) -> list[str]:
    out = io.StringIO()
    print_table(title, headers, rows, console=Console(file=out, width=width, highlight=False))
    return out.getvalue().splitlines()


def parsed_table(lines: list[str]) -> list[list[str]]:
    """The cells of a printed rich table (header row first), one printed line per row."""
    rows = [line.replace(*BORDERS) for line in lines if line.startswith(BORDERS)]
    return [[cell.strip() for cell in row.split(BORDERS[1])[1:-1]] for row in rows]


def parsed_blocks(lines: list[str], headers: list[str]) -> list[list[str]]:
    """The rows of printed ``header: value`` blocks, each value's wrapped lines joined again."""
    rows: list[list[str]] = []
    for line in lines:
        if not line.strip():
            rows.append([])
            continue
        head, _, value = line.partition(":")
        if head in headers and len(rows[-1]) == headers.index(head):
            rows[-1].append(value.strip())
        else:  # a continuation line of the last value
            rows[-1][-1] = f"{rows[-1][-1]} {line.strip()}"
    return rows


words = st.text(alphabet="abcxyz019/.-", min_size=1, max_size=12)
cells = st.lists(words, max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    headers=st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=10), min_size=1, max_size=5, unique=True),
    data=st.data(),
    width=st.integers(30, 200),
)
def test_every_header_and_value_comes_back_in_full_at_any_width(headers, data, width):
    rows = data.draw(st.lists(st.lists(cells, min_size=len(headers), max_size=len(headers)), max_size=5))
    lines = printed("the title", headers, rows, width)
    assert lines[0] == "the title"
    if any(line.startswith("┏") for line in lines):
        assert parsed_table(lines) == [headers, *rows]  # every cell on one line: nothing squeezed or cut
    else:
        assert parsed_blocks(lines[1:], headers) == rows
    label = max(map(len, headers)) + 2
    assert all(len(line) <= max(width, label + 20) for line in lines)  # words are short enough to wrap


def test_a_value_that_looks_like_markup_is_printed_as_is():
    lines = printed("t", ["shape"], [["uint8 [bold] [N, H, H]"]], width=80)
    assert parsed_table(lines) == [["shape"], ["uint8 [bold] [N, H, H]"]]


def collapsed(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("columns", ["80", "60"])
def test_plugins_list_shows_every_field_in_full_on_a_narrow_terminal(cli, builtin_host, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    result = cli("plugins", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= int(columns) for line in lines)
    headers = ["kind", "name", "plugin", "version", "summary"]
    described = [component.describe() for component in builtin_host.registry]
    assert parsed_blocks(lines[1:], headers) == [[row[h] for h in headers] for row in described]


@pytest.mark.parametrize("columns", ["80", "60"])
def test_data_info_shows_every_header_and_path_in_full_on_a_narrow_terminal(cli, monkeypatch, tmp_path, columns):
    monkeypatch.setenv("COLUMNS", columns)
    result = cli("data", "info", "--root", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"data root: {tmp_path}"
    headers = ["name", "path", "present", "verified", "to get it"]
    rows = parsed_blocks(lines[1:], headers)
    assert {row[0] for row in rows} >= {"mnist", "svhn", "qmul-shoes", "qmul-chairs"}
    by_name = {row[0]: row for row in rows}
    assert by_name["qmul-shoes"][1:4] == [str(tmp_path / "qmul" / "shoes"), "no", "no"]
    assert by_name["mnist"][4] == "wynerkit data download mnist"
    assert collapsed(by_name["qmul-shoes"][4]) == "by hand (see: wynerkit data verify qmul-shoes)"


def test_a_wide_terminal_still_gets_a_table(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "300")
    result = cli("data", "info", "--root", tmp_path)
    assert result.exit_code == 0, result.output
    table = parsed_table(result.stdout.splitlines())
    assert table[0] == ["name", "path", "present", "verified", "to get it"]
    assert [str(tmp_path / "mnist"), "no", "no"] == {row[0]: row for row in table[1:]}["mnist"][1:4]
