"""Cell directories: what state each is in, and that an existing one was trained with the cell's spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from wynerkit.errors import UsageError
from wynerkit.evaluation.evaluate import read_summary
from wynerkit.plugins import PluginHost
from wynerkit.rundir.paths import RunDir
from wynerkit.runs.create import write_run_files
from wynerkit.spec.models import RunSpecBase
from wynerkit.sweeps.layout import CELLS
from wynerkit.sweeps.plan import PlannedCell, SweepPlan

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
