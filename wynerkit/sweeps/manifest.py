"""``sweep.json``: the sweep's inputs and every cell's directory and status, rewritten whenever one changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from wynerkit.atomic import write_json_atomic
from wynerkit.errors import UsageError
from wynerkit.sweeps.layout import CELLS, MANIFEST
from wynerkit.sweeps.plan import SweepPlan

Status = Literal["pending", "running", "finished", "diverged"]


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
