"""The add-one benchmark (the paper's Figure 2 at CPU scale): lambda_CI sweep of the variational Wyner model
with two baselines, several seeds.

Runs ``wynerkit sweep benchmarks/specs/addone-sweep.yaml`` over ``objective.lambda_ci`` in {0, 0.1, 0.5, 1}
and the seeds, with the ``degenerate-local`` and ``iiae`` overlays of ``specs/overlays/`` as baselines at
the same budget (one cell per baseline and seed). The rung is MNIST x MNIST (both sides real MNIST, the
embedded pool; y shows x's digit plus one), not MNIST-SVHN: it is the rung where the model learns on a CPU
(see the spec's comment). Every cell evaluates coherence, Fréchet distance, the latent probe and
reconstruction (the spec's ``evaluate:`` list). Then writes ``benchmarks/results/addone_sweep.json``
(every cell's row, and a ``summary`` with mean and sample std per model and lambda_CI) and copies the
sweep's Figure-2-style plot (metric against lambda_CI with error bars, baselines as dashed bands) and
table to ``benchmarks/results/addone_sweep.png`` / ``.md``. The sweep is resumable: rerun to continue
where an earlier invocation stopped; cells of another sweep directory of the same spec (e.g. seeds run
on a second core) can be copied into ``--out``'s ``cells/`` and are then counted as finished.

    WYNERKIT_DATA=../shared/data python benchmarks/addone_sweep.py [--seeds 0,1,2] [--out DIR] [--steps N] \\
        [--results DIR]

About 10 minutes per cell on one CPU thread (2,000 steps), 6 cells per seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sweep_results import (
    ROOT,
    add_sweep_options,
    budget,
    cell_rows,
    load_spec,
    require_data_root,
    run_sweep,
    summarise,
    write_results,
)

SPEC = ROOT / "benchmarks" / "specs" / "addone-sweep.yaml"
METRICS = ("coherence.joint", "coherence.x2y", "coherence.y2x", "fd.joint", "fd.x2y", "fd.y2x")
DATA = (
    "MNIST x MNIST (both sides real MNIST: the embedded pool of 5,000 digits, 4,000 train / 1,000 test), add-one "
    "pairing (y shows (x + 1) mod 10); not MNIST-SVHN: SVHN is not available here, and on its stand-in (SynDigits) "
    "the model stays below 0.5 x->y coherence at this budget"
)
KEPT = (*METRICS, "probe.z_xy", "probe.z_x", "probe.z_y", "recon.x2y", "recon.y2x", "valid.loss", "seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sweep_options(parser, out=ROOT / "sweeps" / "addone-benchmark")
    parser.add_argument("--spec", type=Path, default=SPEC, help="the swept spec (default: the MNIST x MNIST rung)")
    args = parser.parse_args(argv)
    require_data_root("mnist/")
    grid = ["objective.lambda_ci=0,0.1,0.5,1"]
    code = run_sweep(
        args.spec, args.out, grid=grid, seeds=args.seeds, metrics=METRICS, steps=args.steps, overrides=args.overrides
    )
    spec = load_spec(args.spec)
    rows = cell_rows(args.out, spec["objective"]["lambda_ci"], KEPT)
    result = {
        "budget": budget(spec, args.steps, overrides=args.overrides),
        "data": DATA if args.spec.resolve() == SPEC else f"as the spec says: {json.dumps(spec['data'])}",
        "spec": str(args.spec.resolve().relative_to(ROOT)),
        "evaluators": spec.get("evaluate", []),
        "rows": rows,
        "summary": summarise(rows, KEPT, ("model", "lambda_ci")),
    }
    write_results(args.results, "addone_sweep", result, {"": args.out})
    print((args.out / "sweep.md").read_text())
    return code


if __name__ == "__main__":
    sys.exit(main())
