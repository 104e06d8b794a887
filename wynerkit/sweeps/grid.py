"""The grid: ``--grid KEY=V1,V2,...`` axes and the cells they expand to (each baseline once per seed).

Every combination of axis values is one cell; each baseline is one cell per value of the ``seed`` axis
(one cell when there is none) and ignores the other axes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from wynerkit.errors import UsageError
from wynerkit.spec.source import check_yaml_bounds
from wynerkit.sweeps.baselines import Baseline
from wynerkit.sweeps.values import check_storable, name_part, parse_all, value_text

SEED = "seed"
"""The grid axis that baselines follow and that reports average over."""
BASE_CELL = "base"
"""The name of the one grid cell of a sweep without axes."""
BASELINE_KEY = "baseline"


@dataclass(frozen=True)
class Axis:
    """One ``--grid KEY=V1,V2,...``: a dotted spec path and the values it takes."""

    key: str
    values: tuple[Any, ...]


def parse_axis(text: str) -> Axis:
    """``KEY=V1,V2,...``, the values read as one YAML flow list (so ``{a: 1, b: 2}`` stays one value)."""
    key, sep, listed = text.partition("=")
    key = key.strip()
    example = "e.g. --grid objective.lambda_ci=0,0.5,1"
    if not sep or not key:
        raise UsageError(f"--grid {text}: expected KEY=V1,V2,..., {example}")
    if any(not part.strip() for part in key.split(".")) or key[0] in ".-":
        raise UsageError(f"--grid {text}: {key!r} is not a dotted spec path, {example}")
    try:
        check_yaml_bounds(f"[{listed}]", f"--grid {text}", with_position=False)
        values = yaml.safe_load(f"[{listed}]")
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or exc
        raise UsageError(f"--grid {text}: the values are not a comma-separated YAML list: {problem}") from None
    if not values:
        raise UsageError(f"--grid {text}: no values after '='; list at least one, {example}")
    texts = [value_text(v) for v in values]
    for value, shown in zip(values, texts, strict=True):
        check_storable(value, f"--grid {text}: value")
        if texts.count(shown) > 1:
            raise UsageError(f"--grid {text}: value {shown} is listed more than once")
    return Axis(key, tuple(values))


def parse_grid(texts: Sequence[str]) -> list[Axis]:
    """Every ``--grid``; all problems at once, including a key given on two axes."""
    return parse_all(
        texts,
        parse_axis,
        lambda axis: axis.key,
        lambda key: f"--grid {key}: given more than once; list all its values in one --grid",
    )


@dataclass(frozen=True)
class Cell:
    """One run of the sweep: its axis assignments (in axis order) and its baseline, if any."""

    assignments: dict[str, Any]
    baseline: Baseline | None = None

    @property
    def name(self) -> str:
        """The cell's directory name: stable, filesystem-safe, unique within a sweep."""
        parts = [f"{BASELINE_KEY}={name_part(self.baseline.label)}"] if self.baseline else []
        parts += [f"{name_part(key)}={name_part(value_text(v))}" for key, v in self.assignments.items()]
        return "__".join(parts) or BASE_CELL

    @property
    def label(self) -> str:
        """The cell for people: ``objective.lambda_ci=0.5 seed=1``, ``baseline=iiae seed=1``."""
        parts = [f"{BASELINE_KEY}={self.baseline.label}"] if self.baseline else []
        parts += [f"{key}={value_text(v)}" for key, v in self.assignments.items()]
        return " ".join(parts) or BASE_CELL


def expand_grid(axes: Sequence[Axis], baselines: Sequence[Baseline] = ()) -> list[Cell]:
    """Every combination of axis values (the first axis varies slowest), then each baseline per seed."""
    keys = [axis.key for axis in axes]
    cells = [Cell(dict(zip(keys, combo, strict=True))) for combo in itertools.product(*(a.values for a in axes))]
    seeds = next((axis.values for axis in axes if axis.key == SEED), None)
    for baseline in baselines:
        cells += [Cell({SEED: s}, baseline) for s in seeds] if seeds is not None else [Cell({}, baseline)]
    return cells
