"""An example third-party wynerkit plugin: the ``circle-pairs`` dataset.

wynerkit finds this module through the ``wynerkit`` entry-point group (see pyproject.toml) and
registers it with pluggy under the entry point's name, ``example``; pluggy then calls the
``wynerkit_register_*`` hooks defined here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wynerkit import hookimpl
from wynerkit_example.circle_pairs import CirclePairs, CirclePairsParams, build_circle_pairs

if TYPE_CHECKING:
    from wynerkit.hookspecs import Register

__version__ = "0.1.0"


@hookimpl
def wynerkit_register_datasets(register: Register) -> None:
    """Register ``circle-pairs``; its summary is the factory's first docstring line."""
    register("circle-pairs", build_circle_pairs, params=CirclePairsParams)


__all__ = ["CirclePairs", "CirclePairsParams", "build_circle_pairs", "wynerkit_register_datasets"]
