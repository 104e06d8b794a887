"""Does bf16 autocast train as well as fp32? The quickstart in both precisions, over seeds.

Runs ``wynerkit sweep benchmarks/specs/precision-quality.yaml`` (the quickstart's data, networks and
objective, plus the coherence and reconstruction evaluators) over ``train.precision`` in {fp32, bf16}
and the given seeds, then compares each metric's bf16 mean with the fp32 mean, against the fp32
seed-to-seed spread (the run-to-run noise): bf16 is "within noise" on a metric when
``|mean_bf16 - mean_fp32| <= max(fp32 range, 2 x fp32 std)``. Writes
``benchmarks/results/precision_quality.json``. Resumable like every sweep benchmark:

    python benchmarks/precision_quality.py [--seeds 0,1,2] [--steps N] [--out DIR] [--results DIR]

On a CPU without avx512_bf16 / AMX bf16 is emulated and 12-35x slower than fp32 (see throughput.json):
there, pass a smaller ``--steps`` and say so wherever the numbers are quoted.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path
from typing import Any

from sweep_results import ROOT, add_sweep_options, budget, load_spec, run_sweep, write_results

SPEC = ROOT / "benchmarks" / "specs" / "precision-quality.yaml"
METRICS = (
    "coherence.joint",
    "coherence.x2y",
    "coherence.y2x",
    "recon.xy2x",
    "recon.xy2y",
    "recon.x2y",
    "recon.y2x",
    "valid.loss",
)
PRECISIONS = ("fp32", "bf16")


def read_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per cell: precision, seed, status, seconds and every metric the cell has."""
    with open(sweep_dir / "sweep.csv", newline="", encoding="utf-8") as handle:
        cells = list(csv.DictReader(handle))
    rows = []
    for cell in cells:
        row: dict[str, Any] = {"precision": cell["train.precision"], "seed": int(cell["seed"])}
        row["status"] = cell["status"]
        rows.append(row | {key: float(cell[key]) for key in (*METRICS, "seconds") if cell.get(key)})
    return rows


def compare(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per metric: fp32 and bf16 means, the fp32 noise band, the difference and whether it is within noise."""
    out: dict[str, dict[str, Any]] = {}
    for metric in (*METRICS, "seconds"):
        values = {p: [r[metric] for r in rows if r["precision"] == p and metric in r] for p in PRECISIONS}
        if not values["fp32"] or not values["bf16"]:
            continue
        fp32 = values["fp32"]
        noise = max(max(fp32) - min(fp32), 2 * statistics.stdev(fp32)) if len(fp32) > 1 else None
        difference = statistics.fmean(values["bf16"]) - statistics.fmean(fp32)
        out[metric] = {
            "fp32": [round(v, 4) for v in fp32],
            "bf16": [round(v, 4) for v in values["bf16"]],
            "difference": round(difference, 4),
            "fp32_noise": None if noise is None else round(noise, 4),
            "within_noise": None if noise is None or metric == "seconds" else abs(difference) <= noise,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sweep_options(parser, out=ROOT / "sweeps" / "precision-quality")
    args = parser.parse_args(argv)
    code = run_sweep(
        SPEC,
        args.out,
        grid=[f"train.precision={','.join(PRECISIONS)}"],
        seeds=args.seeds,
        metrics=METRICS,
        steps=args.steps,
        baselines=(),
    )
    spec = load_spec(SPEC)
    rows = read_rows(args.out)
    result = {
        "budget": budget(spec, args.steps),
        "data": "the 5,000 embedded MNIST digits x SynDigits, a generated stand-in for SVHN (not real SVHN), add-one",
        "spec": str(SPEC.relative_to(ROOT)),
        "evaluators": spec["evaluate"],
        "within_noise_rule": "|mean(bf16) - mean(fp32)| <= max(range of fp32 seeds, 2 x their std)",
        "rows": rows,
        "comparison": compare(rows),
    }
    write_results(args.results, "precision_quality", result, {"": args.out})
    print((args.out / "sweep.md").read_text())
    return code


if __name__ == "__main__":
    sys.exit(main())
