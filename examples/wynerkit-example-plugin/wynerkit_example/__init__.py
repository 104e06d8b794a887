"""An example third-party wynerkit plugin: the ``circle-pairs`` and ``shapes-pairs`` datasets.

wynerkit finds this module through the ``wynerkit`` entry-point group (see pyproject.toml) and
registers it with pluggy under the entry point's name, ``example``; pluggy then calls the
``wynerkit_register_*`` hooks defined here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wynerkit import hookimpl
from wynerkit_example.circle_pairs import CirclePairs, CirclePairsParams, build_circle_pairs
from wynerkit_example.shapes_pairs import ShapesPairs, ShapesPairsParams, build_shapes_pairs
from wynerkit_example.shapes_source import build_shapes_source

if TYPE_CHECKING:
    from wynerkit.hookspecs import Register

__version__ = "0.1.0"


@hookimpl
def wynerkit_register_datasets(register: Register) -> None:
    """Register ``circle-pairs`` and ``shapes-pairs``; a summary is the factory's first docstring line."""
    register("circle-pairs", build_circle_pairs, params=CirclePairsParams)
    register("shapes-pairs", build_shapes_pairs, params=ShapesPairsParams)


@hookimpl
def wynerkit_register_data_sources(register: Register) -> None:
    """Register the ``shapes-pairs`` files, so that ``wynerkit data download shapes-pairs`` gets them."""
    register("shapes-pairs", build_shapes_source)


__all__ = [
    "CirclePairs",
    "CirclePairsParams",
    "ShapesPairs",
    "ShapesPairsParams",
    "build_circle_pairs",
    "build_shapes_pairs",
    "build_shapes_source",
    "wynerkit_register_data_sources",
    "wynerkit_register_datasets",
]
