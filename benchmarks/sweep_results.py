"""What the sweep benchmarks share: run ``wynerkit sweep`` on a benchmark spec, read its cells back as result
rows, write the results JSON and copy the sweep's plot and table next to it.

Used by ``addone_sweep.py``, ``zeroshot_digits.py`` and ``qmul_retrieval.py``; they run as scripts
(``python benchmarks/NAME.py``), so this module is imported from their own folder. Every script takes the
same sweep options (``add_sweep_options``): ``--seeds``, ``--out`` (the sweep directory), ``--steps N``
(passed to every cell as ``--set train.max_steps=N``, for smoke tests) and ``--results DIR`` (where the
JSON and figures go, default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from wynerkit.atomic import write_text_atomic
from wynerkit.rundir.paths import RunDir
from wynerkit.sweeps.grid import Cell

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ROOT / "specs" / "overlays"
RESULTS = ROOT / "benchmarks" / "results"
BASELINES = ("degenerate-local", "iiae")
"""Overlays in specs/overlays/ run as baselines (models wyner-degenerate-local and iiae) at the same budget."""
SWEEP_FAILED = 1
"""``wynerkit sweep``'s exit code when a cell diverged or an evaluator failed; the other cells' rows still count."""


def add_sweep_options(parser: argparse.ArgumentParser, *, out: Path) -> None:
    """The options every sweep benchmark takes."""
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (a grid axis; baselines get one per seed)")
    parser.add_argument("--out", type=Path, default=out, help=f"the sweep directory (default {out.relative_to(ROOT)})")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per cell instead of the spec's budget (--set train.max_steps=N; for smoke tests)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field in every cell (repeatable; e.g. --set train.device=cuda)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help=f"where the results JSON and figures are written (default {RESULTS.relative_to(ROOT)})",
    )


def require_data_root(holding: str) -> Path:
    """``$WYNERKIT_DATA``, or exit with a line saying to set it."""
    root = os.environ.get("WYNERKIT_DATA")
    if not root:
        sys.exit(f"set WYNERKIT_DATA to the data root holding {holding} (e.g. WYNERKIT_DATA=../shared/data)")
    return Path(root)


def load_spec(path: Path) -> dict[str, Any]:
    """A benchmark spec as plain YAML data (for the budget and the evaluators recorded in the results)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def run_sweep(
    spec: Path,
    out: Path,
    *,
    grid: Sequence[str],
    seeds: str,
    metrics: Sequence[str],
    steps: int | None = None,
    overrides: Sequence[str] = (),
    baselines: Sequence[str] = BASELINES,
) -> int:
    """Run ``wynerkit sweep`` (resumable: a rerun continues) and return its exit code.

    Exits when the sweep wrote no ``sweep.csv`` or failed for another reason than a diverged cell or a
    failed evaluator (exit 1, which the result rows record as each cell's status).
    """
    command = [sys.executable, "-m", "wynerkit", "sweep", str(spec), "--out", str(out)]
    for axis in (*grid, f"seed={seeds}"):
        command += ["--grid", axis]
    for stem in baselines:
        command += ["--baseline", str(OVERLAYS / f"{stem}.yaml")]
    for override in overrides:
        command += ["--set", override]
    if steps is not None:
        command += ["--set", f"train.max_steps={steps}"]
    command += ["--metrics", ",".join(metrics)]
    print("+", shlex.join(command), flush=True)
    code = subprocess.run(command, check=False).returncode
    if code not in (0, SWEEP_FAILED) or not (out / "sweep.csv").is_file():
        sys.exit(f"wynerkit sweep {spec.name} failed (exit {code}); see its messages above")
    return code


def cell_rows(
    sweep_dir: Path, base_lambda: float, kept: Sequence[str], first: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per cell of ``sweep.csv``: ``first``, then model, lambda_ci, seed, status and the ``kept`` numbers.

    ``lambda_ci`` is the cell's grid value, else the spec's (``base_lambda``, e.g. for the degenerate-local
    baseline), and None for IIAE, which has no common-information term. A metric a cell lacks (a diverged
    cell, a failed evaluator) is left out of its row.
    """
    with open(sweep_dir / "sweep.csv", newline="", encoding="utf-8") as handle:
        cells = list(csv.DictReader(handle))
    rows = []
    for cell in cells:
        model, lam = cell["model"], cell.get("objective.lambda_ci") or ""
        row: dict[str, Any] = {
            **(first or {}),
            "model": model,
            "lambda_ci": None if model == "iiae" else float(lam) if lam else base_lambda,
            "seed": int(cell["seed"]),
            "status": cell.get("status"),
        }
        rows.append(row | {key: float(cell[key]) for key in kept if cell.get(key)})
    return rows


def collected_rows(
    sweep_dirs: Sequence[Path], kept: Sequence[str], first: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Rows as ``cell_rows`` gives them, read from every ended cell under each ``<sweep dir>/cells/``.

    For cells trained in several sweep directories (say, one seed per core), whether or not every cell of
    the grid has run: each cell's model, lambda_ci and seed come from its ``spec.resolved.json``, its
    numbers from its ``summary.json``. A (model, lambda_ci, seed) found twice, say a cell copied into a
    second directory under another name, counts once (the first).
    """
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for sweep_dir in sweep_dirs:
        for cell_dir in sorted((sweep_dir / "cells").iterdir()):
            run = RunDir(cell_dir)
            if not run.summary.is_file():
                continue
            summary = json.loads(run.summary.read_text(encoding="utf-8"))
            if summary.get("status") not in ("finished", "diverged"):
                continue
            spec = json.loads(run.resolved_spec.read_text(encoding="utf-8"))
            model = spec["model"]["name"]
            row: dict[str, Any] = {
                **(first or {}),
                "model": model,
                "lambda_ci": None if model == "iiae" else float(spec["objective"]["lambda_ci"]),
                "seed": int(spec["seed"]),
                "status": summary["status"],
            }
            numbers = {key: float(summary[key]) for key in kept if isinstance(summary.get(key), int | float)}
            rows.setdefault((row["model"], row["lambda_ci"], row["seed"]), row | numbers)
    return list(rows.values())


def budget(spec: Mapping[str, Any], steps: int | None, **extra: Any) -> dict[str, Any]:
    """The training budget of every cell: steps (``steps`` when given, else the spec's), batch, preset, machine."""
    train = spec["train"]
    steps = steps if steps is not None else train.get("max_steps")
    return {
        "steps": steps,
        "epochs": train.get("epochs") if steps is None else None,
        "batch_size": train["batch_size"],
        "pairs_seen": steps * train["batch_size"] if steps is not None else None,
        "preset": spec["model"]["x"].get("preset", "cpu"),
        "machine": machine(),
        **extra,
    }


def machine() -> str:
    """The GPU, or the CPU model and its core count, and torch's version: where a result's numbers were measured."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        model = names[0] if names else model
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA), {model} host, torch {torch.__version__}"
    return f"{model}, {os.cpu_count()} CPU cores, torch {torch.__version__} (CPU), one torch thread per cell"


def summarise(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], group: Sequence[str]) -> list[dict[str, Any]]:
    """Mean and sample standard deviation (n - 1; 0 for one row) of each metric over the rows that share ``group``.

    Rows whose status is not "finished" are left out; each summary row says how many rows (seeds) it holds.
    """
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("status", "finished") == "finished":
            groups.setdefault(tuple(row.get(key) for key in group), []).append(row)
    summary = []
    for key, members in groups.items():
        entry: dict[str, Any] = dict(zip(group, key, strict=True)) | {"n": len(members)}
        for metric in metrics:
            values = [float(m[metric]) for m in members if metric in m]
            if values:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                entry[metric] = {"mean": statistics.fmean(values), "std": std}
        summary.append(entry)
    return summary


def full_model_cell(seeds: str) -> str:
    """The full model's cell directory (the spec's own model, first seed), as ``wynerkit sweep`` names it."""
    return Cell({"seed": int(seeds.split(",")[0])}).name


def write_results(
    results: Path, name: str, result: Mapping[str, Any], sweeps: Mapping[str, Path], figure_cell: str | None = None
) -> Path:
    """Write ``results/<name>.json`` and copy each sweep's ``sweep.png`` and ``sweep.md`` to ``<name><suffix>.*``.

    ``sweeps`` maps a file-name suffix (``""`` for a single sweep, e.g. ``"_shoes"``) to a sweep directory.
    With ``figure_cell`` (a cell name, e.g. ``objective.lambda_ci=0.1__seed=0``), that cell's retrieval
    figure (``figures/retrieval.png``, the paper's Figure 3 layout) is copied to ``<name><suffix>_figure3.png``.
    The JSON keeps the key order given (written atomically); returns its path.
    """
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    write_text_atomic(path, json.dumps(result, indent=2, allow_nan=False) + "\n")
    for suffix, sweep_dir in sweeps.items():
        copies = {f"sweep.{kind}": f"{name}{suffix}.{kind}" for kind in ("png", "md")}
        if figure_cell is not None:
            copies[f"cells/{figure_cell}/figures/retrieval.png"] = f"{name}{suffix}_figure3.png"
        for made, kept in copies.items():
            if (sweep_dir / made).is_file():  # no sweep.png without matplotlib (the sweep warns)
                shutil.copyfile(sweep_dir / made, results / kept)
    return path
