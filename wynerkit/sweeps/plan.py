"""A sweep's plan: every cell's spec built and validated before anything trains.

A cell's spec is the spec with the ``--set`` overrides, then its baseline's entries, then its own
assignments applied, in that order.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from wynerkit.components import Registry
from wynerkit.errors import UsageError
from wynerkit.spec.error_lines import format_validation_error
from wynerkit.spec.models import RunSpecBase, build_run_spec_model
from wynerkit.spec.source import SpecSource, YamlPath, apply_overrides, read_spec_source
from wynerkit.sweeps.baselines import Baseline
from wynerkit.sweeps.grid import Axis, Cell, expand_grid
from wynerkit.sweeps.layout import DEFAULT_ROOT
from wynerkit.sweeps.values import short_digest, value_text


@dataclass
class CellSource(SpecSource):
    """A cell's spec source: problems caused by a grid value or an overlay entry say so, not ``--set``."""

    origins: dict[str, str] = field(default_factory=dict)

    def where(self, path: YamlPath) -> str:
        place = super().where(path)
        return self.origins.get(place.removeprefix("--set "), place) if place.startswith("--set ") else place


def cell_source(base: SpecSource, cell: Cell) -> CellSource:
    """``base`` with the cell's baseline entries and then its assignments applied."""
    origins: dict[str, str] = {}
    if cell.baseline is not None:
        for key, value in cell.baseline.entries.items():
            origins[f"{key}={value_text(value)}"] = f"--baseline {cell.baseline.path} {key}={value_text(value)}"
    for key, value in cell.assignments.items():
        origins[f"{key}={value_text(value)}"] = f"--grid {key}={value_text(value)}"
    if cell.baseline is not None and cell.baseline.unset:
        base = without_keys(base, cell.baseline.unset)
    source = apply_overrides(base, list(origins))
    return CellSource(source.path, source.data, source.positions, source.overrides, origins)


def without_keys(source: SpecSource, keys: Sequence[str]) -> SpecSource:
    """A copy of ``source`` with each dotted key that exists removed."""
    data = copy.deepcopy(source.data)
    for key in keys:
        *parents, last = key.split(".")
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return SpecSource(path=source.path, data=data, positions=source.positions, overrides=dict(source.overrides))


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    spec: RunSpecBase
    source: SpecSource

    @property
    def resolved(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json")


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: every cell's spec, and what identifies the sweep."""

    spec_path: Path
    sets: list[str]
    axes: list[Axis]
    baselines: list[Baseline]
    cells: list[PlannedCell]
    digest: str

    @property
    def name(self) -> str:
        return self.cells[0].spec.name

    def default_dir(self) -> Path:
        """``sweeps/<spec name>-<hash of spec, --set, grid and baselines>``."""
        return DEFAULT_ROOT / f"{self.name}-{self.digest}"


def plan_sweep(
    spec_path: Path, registry: Registry, axes: Sequence[Axis], baselines: Sequence[Baseline], sets: Sequence[str]
) -> SweepPlan:
    """Build and validate every cell's spec; every problem of every cell in one UsageError."""
    original = read_spec_source(spec_path)
    base = apply_overrides(original, list(sets))
    model = build_run_spec_model(registry)
    cells = expand_grid(axes, baselines)
    planned: list[PlannedCell] = []
    problems: dict[str, list[str]] = {}  # message -> labels of the cells that have it
    for cell in cells:
        try:
            planned.append(_plan_cell(base, cell, model))
        except UsageError as exc:
            for message in exc.problems:
                problems.setdefault(message, []).append(cell.label)
    if problems:
        raise UsageError([_cells_problem(labels, len(cells), message) for message, labels in problems.items()])
    identity = {
        "spec": original.data,
        "sets": list(sets),
        "grid": [[axis.key, [value_text(v) for v in axis.values]] for axis in axes],
        "baselines": [[b.label, b.entries] for b in baselines],
    }
    digest = short_digest(yaml.safe_dump(identity, sort_keys=True))
    return SweepPlan(spec_path, list(sets), list(axes), list(baselines), planned, digest)


def _plan_cell(base: SpecSource, cell: Cell, model: type[RunSpecBase]) -> PlannedCell:
    source = cell_source(base, cell)
    try:
        spec = model.model_validate(source.data)
    except ValidationError as exc:
        raise UsageError(format_validation_error(exc, source, model)) from None
    return PlannedCell(cell, spec, source)


def _cells_problem(labels: list[str], total: int, message: str) -> str:
    """One problem line naming the cells that have it (every cell, or up to three, then a count)."""
    if len(labels) == total > 1:
        return f"all {total} cells: {message}"
    shown = labels if len(labels) <= 3 else [*labels[:2], f"{len(labels) - 2} more"]
    return f"{'cell' if len(labels) == 1 else 'cells'} {'; '.join(shown)}: {message}"
