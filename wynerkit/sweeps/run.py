"""Running a sweep: one run per cell of a grid of spec changes (plus baseline overlays), resumable.

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

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wynerkit.errors import UsageError
from wynerkit.evaluation.evaluate import EvaluationFailed, read_summary
from wynerkit.plugins import PluginHost
from wynerkit.rundir.lock import exclusive_lock
from wynerkit.runs.training_run import train_run
from wynerkit.sweeps.cell_dirs import cell_state, check_cell_dirs, prepare_cell_dir
from wynerkit.sweeps.layout import CELLS
from wynerkit.sweeps.manifest import Manifest
from wynerkit.sweeps.plan import SweepPlan
from wynerkit.training.divergence import TrainingDiverged


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
