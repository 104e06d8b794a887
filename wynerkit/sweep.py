"""Sweeps: one run per cell of a grid of spec changes (plus baseline overlays), resumable.

A sweep takes a spec, ``--set`` overrides for every cell, grid axes (``KEY=V1,V2,...``) and
baseline overlays (YAML mappings of dotted keys to values, with the meaning of ``--set``). Every
combination of axis values is one cell; each baseline is one cell per value of the ``seed`` axis
(one cell when there is none) and ignores the other axes. A cell's spec is the spec with the
``--set`` overrides, then its baseline's entries, then its own assignments applied, in that order.

Every cell is validated before anything trains. Cells live in ``SWEEP_DIR/cells/<name>/``, named
from their assignments, and are ordinary run directories (``wynerkit eval``, ``sample`` and
``run --resume`` work on them). Running a sweep again skips finished and diverged cells, resumes
cells with checkpoints, and starts the others; ``sweep.json`` records every cell's status,
rewritten atomically whenever one changes.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import ValidationError

from wynerkit.atomic import write_json_atomic
from wynerkit.components import Registry
from wynerkit.errors import UsageError
from wynerkit.evaluation import EvaluationFailed, read_summary
from wynerkit.plugins import PluginHost
from wynerkit.run_dir import RunDir
from wynerkit.run_lock import exclusive_lock
from wynerkit.runs import write_run_files
from wynerkit.spec import RunSpecBase, build_run_spec_model
from wynerkit.spec_errors import format_validation_error
from wynerkit.spec_source import SpecSource, YamlPath, apply_overrides, check_yaml_bounds, read_spec_source
from wynerkit.trainer import TrainingDiverged
from wynerkit.training_run import train_run

T = TypeVar("T")
SEED = "seed"
"""The grid axis that baselines follow and that reports average over."""
CELLS = "cells"
MANIFEST = "sweep.json"
DEFAULT_ROOT = Path("sweeps")
BASE_CELL = "base"
"""The name of the one grid cell of a sweep without axes."""
BASELINE_KEY = "baseline"
MAX_PART = 40
"""Longest assignment text kept verbatim in a cell name; longer (or unsafe) ones are shortened and hashed."""

Status = Literal["pending", "running", "finished", "diverged"]
_SAFE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def value_text(value: Any) -> str:
    """A value as one line of YAML, the text that ``--set`` and ``--grid`` read back as the same value."""
    lines = yaml.safe_dump(value, default_flow_style=True, width=2**31 - 1, sort_keys=False).splitlines()
    lines = [line for line in lines if line != "..."]
    # A string with line breaks dumps over several lines, which joining would change: JSON (which YAML
    # reads) escapes them on one line.
    return lines[0] if len(lines) == 1 else json.dumps(value, ensure_ascii=False)


def name_part(text: str) -> str:
    """``text`` when it is a short run of filesystem-safe characters, else a readable stub + ``~`` + its hash.

    Verbatim parts never contain ``~`` or ``=``, so distinct texts never give the same part.
    """
    if _SAFE.fullmatch(text) and len(text) <= MAX_PART:
        return text
    stub = _UNSAFE.sub("_", text).strip("._-")[:24]
    return f"{stub}~{_digest(text)}"


def _check_storable(value: Any, what: str) -> None:
    """``value`` must survive sweep.json: YAML's dates, binary and NaN do not."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise UsageError(
            f"{what}: {value_text(value)} cannot be recorded in {MANIFEST}; use numbers, strings, booleans, "
            "null, lists and mappings (quote dates)"
        ) from None


# -- the grid ---------------------------------------------------------------------------------------


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
        _check_storable(value, f"--grid {text}: value")
        if texts.count(shown) > 1:
            raise UsageError(f"--grid {text}: value {shown} is listed more than once")
    return Axis(key, tuple(values))


def parse_grid(texts: Sequence[str]) -> list[Axis]:
    """Every ``--grid``; all problems at once, including a key given on two axes."""
    return _parse_all(
        texts,
        parse_axis,
        lambda axis: axis.key,
        lambda key: f"--grid {key}: given more than once; list all its values in one --grid",
    )


def _parse_all(
    texts: Sequence[Any], parse: Callable[[Any], T], key: Callable[[T], str], duplicate: Callable[[str], str]
) -> list[T]:
    """Parse every item, collecting every item's problems and one line per key two items share."""
    parsed, problems = [], []
    for text in texts:
        try:
            parsed.append(parse(text))
        except UsageError as exc:
            problems += exc.problems
    keys = [key(item) for item in parsed]
    problems += [duplicate(k) for k in sorted({k for k in keys if keys.count(k) > 1})]
    if problems:
        raise UsageError(problems)
    return parsed


# -- baselines --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """A baseline overlay: its label (the file stem), its file and its dotted-key entries."""

    label: str
    path: Path
    entries: dict[str, Any]
    unset: tuple[str, ...] = ()
    """Dotted keys removed from the spec before the entries apply (fields the overlay's component lacks)."""


UNSET = "unset"
"""The overlay key listing dotted spec keys to remove, e.g. ``unset: [model.local_noise]``."""


def read_baseline(path: Path) -> Baseline:
    """Read an overlay file: a YAML mapping of dotted keys to the values that replace those nodes.

    The key ``unset`` lists dotted keys to remove first (absent ones are ignored): an overlay that
    swaps a component can drop the fields only the replaced component has.
    """
    where = f"--baseline {path}"
    try:
        text = path.read_text(encoding="utf-8")
        check_yaml_bounds(text, str(path))  # an overlay is part of a spec: bounded alike
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read it: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UsageError(f"{at}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: invalid YAML: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and k.strip() for k in data):
        raise UsageError(
            f"{where}: an overlay is a mapping of dotted spec keys to values, e.g. `model.name: iiae` "
            "(each entry replaces the node at its key, as --set does)"
        )
    unset = data.pop(UNSET, [])
    if not isinstance(unset, list) or not all(isinstance(k, str) and k.strip() for k in unset):
        raise UsageError(f"{where}: {UNSET} is a list of dotted spec keys to remove, e.g. [model.local_noise]")
    for key, value in data.items():
        _check_storable(value, f"{where}: {key}")
    return Baseline(label=path.stem, path=path, entries=data, unset=tuple(unset))


def read_baselines(paths: Sequence[Path]) -> list[Baseline]:
    """Every ``--baseline``; all problems at once, including two files with the same stem (label)."""
    return _parse_all(
        paths,
        read_baseline,
        lambda baseline: baseline.label,
        lambda label: f"--baseline: two overlays are labelled {label!r} (labels are file stems); rename one",
    )


# -- cells ------------------------------------------------------------------------------------------


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


# -- the plan ---------------------------------------------------------------------------------------


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
    digest = _digest(yaml.safe_dump(identity, sort_keys=True))
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


# -- cell directories -------------------------------------------------------------------------------

CellState = Literal["new", "partial", "finished", "diverged"]


def cell_state(cell_dir: Path) -> CellState:
    """``finished``/``diverged`` from summary.json; ``partial`` when the run started; else ``new``."""
    status = read_summary(cell_dir).get("status")
    if status in ("finished", "diverged"):
        return status
    return "partial" if RunDir(cell_dir).is_run() else "new"


def check_cell_dirs(plan: SweepPlan, sweep_dir: Path) -> None:
    """Existing cell directories must hold the same resolved spec as the cell now (else a UsageError)."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise UsageError(f"--out {sweep_dir}: is a file, not a directory; pass a directory for the sweep")
    problems = []
    for planned in plan.cells:
        recorded = RunDir(sweep_dir / CELLS / planned.cell.name).resolved_spec
        if not recorded.is_file():
            continue
        before = upgraded(json.loads(recorded.read_text(encoding="utf-8")), planned.spec)
        changed = _differences(before, planned.resolved)
        if changed:
            problems.append(
                f"cell {planned.cell.label}: {recorded.parent} was trained with another spec "
                f"(differs in {', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''}); "
                "delete that directory or pass another --out"
            )
    if problems:
        raise UsageError(problems)


def upgraded(recorded: Any, spec: RunSpecBase) -> Any:
    """A cell's recorded resolved spec as the current spec model reads it: fields added to wynerkit since
    the cell was trained take their defaults, so only real changes count; unreadable records stay as they are."""
    try:
        return type(spec).model_validate(recorded).model_dump(mode="json")
    except ValidationError:
        return recorded


def _differences(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths where two JSON values differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        return [d for k in keys for d in _differences(before.get(k), after.get(k), f"{path}.{k}" if path else k)]
    return [] if before == after else [path or "(root)"]


def prepare_cell_dir(cell_dir: Path, planned: PlannedCell, host: PluginHost) -> None:
    """Write the run files (``spec.yaml``, ``spec.resolved.json``, ``env.json``) of a new cell."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    write_run_files(cell_dir, planned.source, planned.resolved, host)


# -- the manifest -----------------------------------------------------------------------------------


class Manifest:
    """``sweep.json``: the sweep's inputs and every cell's directory and status, written atomically."""

    def __init__(self, sweep_dir: Path, plan: SweepPlan) -> None:
        self.path = sweep_dir / MANIFEST
        self.data: dict[str, Any] = {
            "version": 1,
            "spec": str(plan.spec_path),
            "name": plan.name,
            "digest": plan.digest,
            "sets": plan.sets,
            "grid": [{"key": axis.key, "values": list(axis.values)} for axis in plan.axes],
            "baselines": [{"label": b.label, "path": str(b.path), "entries": b.entries} for b in plan.baselines],
            "cells": [
                {
                    "name": p.cell.name,
                    "dir": f"{CELLS}/{p.cell.name}",
                    "label": p.cell.label,
                    "assignments": p.cell.assignments,
                    "baseline": p.cell.baseline.label if p.cell.baseline else None,
                    "model": p.spec.model.name,  # type: ignore[attr-defined]
                    "seed": p.spec.seed,
                    "status": "pending",
                }
                for p in plan.cells
            ],
        }
        self.cells: dict[str, dict[str, Any]] = {cell["name"]: cell for cell in self.data["cells"]}

    def set(self, name: str, status: Status, error: str | None = None) -> None:
        cell = self.cells[name]
        cell["status"] = status
        cell.pop("error", None)
        if error:
            cell["error"] = error
        self.write()

    def write(self) -> None:
        write_json_atomic(self.path, self.data)


def read_manifest(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / MANIFEST
    if not path.is_file():
        raise UsageError(f"{sweep_dir}: not a sweep directory (no {MANIFEST})")
    return json.loads(path.read_text(encoding="utf-8"))


# -- running ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepOutcome:
    """Cells that ended badly: diverged (now or earlier), or whose evaluators failed in this invocation."""

    diverged: list[str]
    failed_evaluations: list[str]

    @property
    def ok(self) -> bool:
        return not self.diverged and not self.failed_evaluations


def run_sweep(plan: SweepPlan, sweep_dir: Path, host: PluginHost, log: Callable[[str], None]) -> SweepOutcome:
    """Train every cell that is not done yet, in order; a diverged cell is recorded and the sweep goes on."""
    check_cell_dirs(plan, sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    log(f"sweep {sweep_dir}: {len(plan.cells)} cells")
    manifest = Manifest(sweep_dir, plan)
    states = {p.cell.name: cell_state(sweep_dir / CELLS / p.cell.name) for p in plan.cells}
    for name, state in states.items():
        if state in ("finished", "diverged"):
            manifest.cells[name]["status"] = state
        if state == "diverged":
            manifest.cells[name]["error"] = read_summary(sweep_dir / CELLS / name).get("error", "")
    manifest.write()
    diverged, failed = [], []
    total = len(plan.cells)
    for number, planned in enumerate(plan.cells, 1):
        cell = planned.cell
        cell_dir = sweep_dir / CELLS / cell.name
        prefix = f"cell {number}/{total} {cell.label}"
        state = states[cell.name]
        if state in ("finished", "diverged"):
            log(f"{prefix}: {state} earlier, skipped ({cell_dir}{_RETRY if state == 'diverged' else ''})")
            if state == "diverged":
                diverged.append(cell.label)
            continue
        if state == "new":
            prepare_cell_dir(cell_dir, planned, host)
        log(f"{prefix}: {'resuming' if state == 'partial' else 'training'} in {cell_dir}")
        manifest.set(cell.name, "running")
        started = time.perf_counter()
        try:
            with exclusive_lock(cell_dir):  # a `wynerkit run --resume` of this cell must not train it at once
                train_run(cell_dir, planned.spec, host.registry, resume=state == "partial")
        except TrainingDiverged as exc:
            manifest.set(cell.name, "diverged", str(exc))
            diverged.append(cell.label)
            log(f"{prefix}: diverged: {exc}")
            continue
        except EvaluationFailed as exc:
            manifest.set(cell.name, "finished", str(exc))
            failed.append(cell.label)
            log(f"{prefix}: finished, but evaluators failed ({_seconds(started)}): {exc}")
            continue
        except UsageError as exc:
            manifest.set(cell.name, "pending", exc.problems[0])
            raise UsageError([f"{prefix}: {line}" for line in exc.problems]) from None
        manifest.set(cell.name, "finished")
        log(f"{prefix}: finished ({_seconds(started)})")
    return SweepOutcome(diverged, failed)


_RETRY = "; delete it to train it again"


def _seconds(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"
