"""The three splits every dataset provides, and the one error for any other name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from wynerkit.interfaces import Split

SPLITS: tuple[Split, ...] = ("train", "valid", "test")
T = TypeVar("T")


def check_split(name: str) -> Split:
    """``name`` if it is a split, else a ValueError listing the valid ones."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; valid splits are {', '.join(SPLITS)}")
    return name  # type: ignore[return-value]


def select_split(splits: Mapping[str, T], name: str) -> T:
    """The split called ``name`` from a dataset's ``{split: items}`` mapping."""
    return splits[check_split(name)]
