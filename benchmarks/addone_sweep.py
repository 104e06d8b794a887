"""The issue-5 add-one benchmark: lambda_CI sweep of the variational Wyner model with two baselines.

Runs ``wynerkit sweep benchmarks/specs/addone-sweep.yaml`` (full MNIST from the data root paired
with SynDigits, the generated stand-in for SVHN; the `cpu` preset; a fixed budget of steps) over
``objective.lambda_ci`` in {0, 0.1, 0.5, 1} with the ``degenerate-local`` and ``iiae`` overlays of
``specs/overlays/`` as baselines at the same budget. Every cell evaluates coherence, Fréchet
distance, the latent probe and reconstruction (the spec's ``evaluate:`` list). Then writes
``benchmarks/results/addone_sweep.json`` and copies the sweep's Figure-2-style plot (metric against
lambda_CI, baselines dashed) to ``benchmarks/results/addone_sweep.png``. The sweep is resumable:
rerun to continue where an earlier invocation stopped.

    WYNERKIT_DATA=../shared/data python benchmarks/addone_sweep.py [--seeds 0,1] [--out DIR]

About 10 minutes per cell on 2 CPU cores, an hour for one seed; use more seeds on a GPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).parent.parent
SPEC = ROOT / "benchmarks" / "specs" / "addone-sweep.yaml"
BASELINES = ("degenerate-local", "iiae")
"""Overlays in specs/overlays/ run as baselines (models wyner-degenerate-local and iiae)."""
RESULTS = ROOT / "benchmarks" / "results"
METRICS = ("coherence.joint", "coherence.x2y", "coherence.y2x", "fd.joint", "fd.x2y", "fd.y2x")
KEPT = (*METRICS, "probe.z_xy", "probe.z_x", "probe.z_y", "recon.x2y", "recon.y2x", "valid.loss", "seconds")


def row(cell: dict[str, str], base_lambda: float) -> dict[str, object]:
    """One result row in the issue's shape: model, lambda_ci, seed, then the metrics."""
    model = cell["model"]
    lam = cell.get("objective.lambda_ci") or ""
    out: dict[str, object] = {
        "model": model,
        "lambda_ci": None if model == "iiae" else float(lam) if lam else base_lambda,
        "seed": int(cell["seed"]),
        "status": cell.get("status"),
    }
    return out | {key: float(cell[key]) for key in KEPT if cell.get(key)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (a grid axis)")
    parser.add_argument("--out", type=Path, default=ROOT / "sweeps" / "addone-benchmark")
    args = parser.parse_args()
    if not os.environ.get("WYNERKIT_DATA"):
        sys.exit("set WYNERKIT_DATA to the data root holding mnist/ (e.g. WYNERKIT_DATA=../shared/data)")
    command = [sys.executable, "-m", "wynerkit", "sweep", str(SPEC), "--out", str(args.out)]
    command += ["--grid", "objective.lambda_ci=0,0.1,0.5,1", "--grid", f"seed={args.seeds}"]
    for stem in BASELINES:
        command += ["--baseline", str(ROOT / "specs" / "overlays" / f"{stem}.yaml")]
    command += ["--metrics", ",".join(METRICS)]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=False)  # exit 1 when a cell diverged or an evaluator failed: rows say so

    spec = yaml.safe_load(SPEC.read_text())
    with open(args.out / "sweep.csv", newline="") as handle:
        rows = [row(cell, spec["objective"]["lambda_ci"]) for cell in csv.DictReader(handle)]
    train = spec["train"]
    result = {
        "budget": {
            "steps": train["max_steps"],
            "batch_size": train["batch_size"],
            "pairs_seen": train["max_steps"] * train["batch_size"],
            "preset": "cpu",
            "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__} (CPU), one cell at a time",
        },
        "data": "full MNIST (from the data root) x SynDigits, a generated stand-in for SVHN (not real SVHN), "
        "add-one pairing",
        "spec": str(SPEC.relative_to(ROOT)),
        "evaluators": spec["evaluate"],
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "addone_sweep.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.copyfile(args.out / "sweep.png", RESULTS / "addone_sweep.png")
    shutil.copyfile(args.out / "sweep.md", RESULTS / "addone_sweep.md")
    print((args.out / "sweep.md").read_text())


if __name__ == "__main__":
    main()
