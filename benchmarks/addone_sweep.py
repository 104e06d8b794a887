"""The issue-5 add-one benchmark: lambda_CI sweep of the variational Wyner model with two baselines.

Runs ``wynerkit sweep benchmarks/specs/addone-sweep.yaml`` (full MNIST from the data root paired
with SynDigits, the generated stand-in for SVHN; the `cpu` preset; a fixed budget of steps) over
``objective.lambda_ci`` in {0, 0.1, 0.5, 1} with the ``degenerate-local`` and ``iiae`` overlays of
``specs/overlays/`` as baselines at the same budget. Every cell evaluates coherence, Fréchet
distance, the latent probe and reconstruction (the spec's ``evaluate:`` list). Then writes
``benchmarks/results/addone_sweep.json`` and copies the sweep's Figure-2-style plot (metric against
lambda_CI, baselines dashed) to ``benchmarks/results/addone_sweep.png``. The sweep is resumable:
rerun to continue where an earlier invocation stopped.

    WYNERKIT_DATA=../shared/data python benchmarks/addone_sweep.py [--seeds 0,1] [--out DIR] [--steps N] \\
        [--results DIR]

About 10 minutes per cell on 2 CPU cores, an hour for one seed; use more seeds on a GPU.
"""

from __future__ import annotations

import argparse
import sys

from sweep_results import (
    ROOT,
    add_sweep_options,
    budget,
    cell_rows,
    load_spec,
    require_data_root,
    run_sweep,
    write_results,
)

SPEC = ROOT / "benchmarks" / "specs" / "addone-sweep.yaml"
METRICS = ("coherence.joint", "coherence.x2y", "coherence.y2x", "fd.joint", "fd.x2y", "fd.y2x")
KEPT = (*METRICS, "probe.z_xy", "probe.z_x", "probe.z_y", "recon.x2y", "recon.y2x", "valid.loss", "seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sweep_options(parser, out=ROOT / "sweeps" / "addone-benchmark")
    args = parser.parse_args(argv)
    require_data_root("mnist/")
    code = run_sweep(
        SPEC, args.out, grid=["objective.lambda_ci=0,0.1,0.5,1"], seeds=args.seeds, metrics=METRICS, steps=args.steps
    )
    spec = load_spec(SPEC)
    result = {
        "budget": budget(spec, args.steps),
        "data": "full MNIST (from the data root) x SynDigits, a generated stand-in for SVHN (not real SVHN), "
        "add-one pairing",
        "spec": str(SPEC.relative_to(ROOT)),
        "evaluators": spec["evaluate"],
        "rows": cell_rows(args.out, spec["objective"]["lambda_ci"], KEPT),
    }
    write_results(args.results, "addone_sweep", result, {"": args.out})
    print((args.out / "sweep.md").read_text())
    return code


if __name__ == "__main__":
    sys.exit(main())
