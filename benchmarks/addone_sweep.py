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
from typing import Any

from sweep_results import (
    ROOT,
    add_sweep_options,
    budget,
    cell_rows,
    collected_rows,
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
    parser.add_argument(
        "--collect",
        type=Path,
        action="append",
        default=[],
        metavar="SWEEP_DIR",
        help="train nothing: collect the ended cells of --out and of these sweep directories (repeatable), "
        "draw the figure from them, and write the results",
    )
    args = parser.parse_args(argv)
    require_data_root("mnist/")
    spec = load_spec(args.spec)
    if args.collect:
        code = 0
        rows = collected_rows([args.out, *args.collect], KEPT)
    else:
        grid = ["objective.lambda_ci=0,0.1,0.5,1"]
        code = run_sweep(
            args.spec,
            args.out,
            grid=grid,
            seeds=args.seeds,
            metrics=METRICS,
            steps=args.steps,
            overrides=args.overrides,
        )
        rows = cell_rows(args.out, spec["objective"]["lambda_ci"], KEPT)
    result = {
        "budget": budget(spec, args.steps, overrides=args.overrides),
        "data": DATA if args.spec.resolve() == SPEC else f"as the spec says: {json.dumps(spec['data'])}",
        "spec": str(args.spec.resolve().relative_to(ROOT)),
        "evaluators": spec.get("evaluate", []),
        "rows": rows,
        "summary": summarise(rows, KEPT, ("model", "lambda_ci")),
    }
    if args.collect:
        write_results(args.results, "addone_sweep", result, {})
        figure_2(result["summary"], METRICS, args.results / "addone_sweep.png")
        print(f"wrote {args.results / 'addone_sweep.json'} and addone_sweep.png from {len(rows)} cells")
    else:
        write_results(args.results, "addone_sweep", result, {"": args.out})
        print((args.out / "sweep.md").read_text())
    return code


def figure_2(summary: list[dict[str, Any]], metrics: tuple[str, ...], path: Path) -> None:
    """The paper's Figure 2 layout from a results summary: each metric against lambda_CI (mean and one std
    over seeds as error bars), every baseline as a dashed line with a one-std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    swept = sorted((e for e in summary if e["model"] == "variational-wyner"), key=lambda e: e["lambda_ci"])
    baselines = [e for e in summary if e["model"] != "variational-wyner"]
    columns = 3
    rows = -(-len(metrics) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.0 * rows), squeeze=False)
    axes = list(grid.flat)
    for ax, metric in zip(axes, metrics, strict=False):
        points = [(e["lambda_ci"], e[metric]["mean"], e[metric]["std"]) for e in swept if metric in e]
        xs, means, stds = zip(*points, strict=True)
        n = max(e["n"] for e in swept)
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, color="C0", label=f"variational-wyner (n={n})")
        for j, entry in enumerate(baselines, start=1):
            if metric in entry:
                mean, std = entry[metric]["mean"], entry[metric]["std"]
                ax.axhline(mean, ls="--", lw=1.2, color=f"C{j}", label=f"{entry['model']} (n={entry['n']})")
                ax.axhspan(mean - std, mean + std, color=f"C{j}", alpha=0.1, lw=0)
        ax.set_xlabel("λ_CI")
        ax.set_title(metric, fontsize=9)
    axes[0].legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
