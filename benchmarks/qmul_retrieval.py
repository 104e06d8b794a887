"""The issue-6 real-sketch benchmark: instance-level sketch -> edge-map retrieval on QMUL shoes and chairs.

For each set, runs ``wynerkit sweep benchmarks/specs/qmul-<set>.yaml`` (real QMUL free-hand sketches and
the edge maps of their product photos, 32x32, trained on the train split only): the variational Wyner
model (lambda_ci 0.1) with the ``degenerate-local`` and ``iiae`` overlays of ``specs/overlays/`` as
baselines at the same budget, one cell per model and seed. Each cell evaluates retrieval on the test
split: every test sketch (q(z|x)) ranks every test edge map (q(z|y)) by cosine similarity; acc@1 and
acc@10 are the shares of sketches whose own edge map is first / among the first ten. The same sketches
and edge maps are also ranked without a learned code (``nn_baselines.py``, on the 32x32 images the
models see): raw pixels ("pixel-nn"), PCA of the training images ("pca-nn"), Gaussian-blurred pixels
("blurred-pixel-nn", sigma 0.5 px at 32 px: the floor's sigma 4 at 256 px) and the best learned linear
code, CCA of the blurred pixels fitted on the training pairs ("blurred-pixel-cca").

The floor to beat is the raw-pixel nearest neighbour of ``../shared/data/README.md`` (cosine similarity of
blurred, 4x-downsampled pixels). It is recorded as published there (``floor``) and, when the README's
script ``../shared/tools/pixel_nn_baseline.py`` is at hand, recomputed on the files under the data root
(``floor_recomputed``; about 2 seconds).

Writes ``benchmarks/results/qmul_retrieval.json`` (``{"budget", "floor", "floor_recomputed", "data",
"specs", "evaluators", "rows": [{"dataset": "shoes", "model", "lambda_ci", "seed", "status",
"retrieval.acc@1", "retrieval.acc@10", ...}], "summary": [mean and std per set and model]}``; the
nearest-neighbour rows have seed None) and copies each sweep's plot and table to
``qmul_retrieval_<set>.png`` / ``.md``. Sweeps are resumable: rerun to continue.

    WYNERKIT_DATA=../shared/data python benchmarks/qmul_retrieval.py [--sets shoes,chairs] [--seeds 0,1,2] \\
        [--out DIR] [--steps N] [--results DIR]

500 steps per cell, 3 cells per set and seed; measured 1.5-3.5 minutes per cell (IIAE under 1.5) with
three or four runs sharing 2 CPU cores.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from nn_baselines import spec_rows
from sweep_results import (
    ROOT,
    add_sweep_options,
    budget,
    cell_rows,
    full_model_cell,
    load_spec,
    require_data_root,
    run_sweep,
    summarise,
    write_results,
)

SETS = ("shoes", "chairs")
SPECS = {name: ROOT / "benchmarks" / "specs" / f"qmul-{name}.yaml" for name in SETS}
METRICS = ("retrieval.acc@1", "retrieval.acc@10")
KEPT = (*METRICS, "retrieval.queries", "retrieval.gallery", "valid.loss", "seconds")
WALL_TIME = "each row's seconds; 1.5-3.5 minutes per cell with 3-4 runs sharing 2 CPU cores"
"""Measured on this session's machine, not a target."""
PCA_COMPONENTS = 64
"""As many PCA axes as the models' z has dimensions."""
BLUR = 0.5
"""Gaussian sigma in pixels at the specs' 32 px: the published floor's sigma 4 at 256 px."""
FLOOR = {"shoes": {"acc@1": 0.157, "acc@10": 0.557}, "chairs": {"acc@1": 0.412, "acc@10": 0.804}}
"""The raw-pixel floor as ../shared/data/README.md gives it (test split, sketch -> edge map)."""
FLOOR_TOOL = ROOT.parent / "shared" / "tools" / "pixel_nn_baseline.py"
FLOOR_METHOD = (
    "cosine nearest neighbour of raw pixels (256x256 files, inverted, Gaussian blur sigma 4, 4x downsampled, "
    "centred), sketch -> edge map, test split: ../shared/tools/pixel_nn_baseline.py"
)
FLOOR_LINE = re.compile(r"^(?P<set>\w+): n=\d+ acc@1=(?P<acc1>[\d.]+) acc@10=(?P<acc10>[\d.]+)$", re.MULTILINE)


def recompute_floor(tool: Path, data_root: Path, sets: list[str]) -> dict[str, dict[str, float]] | None:
    """The floor as the README's script computes it on the files under ``data_root``; None when it cannot run."""
    if not tool.is_file():
        print(f"note: {tool} not found; the floor is recorded as published only", file=sys.stderr)
        return None
    command = [sys.executable, str(tool), str(data_root / "qmul"), *sets]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = FLOOR_LINE.finditer(done.stdout)
    found = {m["set"]: {"acc@1": float(m["acc1"]), "acc@10": float(m["acc10"])} for m in lines}
    if done.returncode != 0 or set(found) != set(sets):
        print(f"note: {tool} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return found


def parse_sets(text: str) -> list[str]:
    sets = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in sets if s not in SETS]
    if unknown or not sets:
        raise argparse.ArgumentTypeError(f"sets must be among {', '.join(SETS)}, got {text!r}")
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sweep_options(parser, out=ROOT / "sweeps" / "qmul-retrieval-benchmark")
    parser.add_argument("--sets", type=parse_sets, default=list(SETS), help="comma-separated: shoes, chairs")
    parser.add_argument("--floor-tool", type=Path, default=FLOOR_TOOL, help="the raw-pixel floor script")
    args = parser.parse_args(argv)
    data_root = require_data_root("qmul/shoes/ and qmul/chairs/")
    floor_recomputed = recompute_floor(args.floor_tool, data_root, args.sets)
    codes, rows, specs = [], [], {}
    for name in args.sets:
        out = args.out / name
        codes.append(run_sweep(SPECS[name], out, grid=[], seeds=args.seeds, metrics=METRICS, steps=args.steps))
        specs[name] = load_spec(SPECS[name])
        rows += cell_rows(out, specs[name]["objective"]["lambda_ci"], KEPT, {"dataset": name})
        rows += spec_rows(SPECS[name], name, "instance", [1, 10], components=PCA_COMPONENTS, blur=BLUR)
    first = specs[args.sets[0]]
    result = {
        "budget": budget(first, args.steps, wall_time=WALL_TIME),
        "floor": {name: FLOOR[name] for name in args.sets},
        "floor_recomputed": floor_recomputed,
        "floor_method": FLOOR_METHOD,
        "data": f"QMUL {' and '.join(args.sets)} (Yu et al., CVPR 2016): real free-hand sketches (queries) and "
        f"edge maps of the product photos (gallery), {first['data']['size']}x{first['data']['size']}, "
        "instance-level pairs; trained on the train split (10% held out as valid), tested on the test split",
        "specs": {name: str(SPECS[name].relative_to(ROOT)) for name in args.sets},
        "evaluators": first["evaluate"],
        "rows": rows,
        "summary": summarise(rows, (*METRICS, "seconds"), ("dataset", "model")),
    }
    sweeps = {f"_{name}": args.out / name for name in args.sets}
    path = write_results(args.results, "qmul_retrieval", result, sweeps, figure_cell=full_model_cell(args.seeds))
    for name in args.sets:
        print(f"## {name} (floor acc@1 {FLOOR[name]['acc@1']}, acc@10 {FLOOR[name]['acc@10']})")
        print((args.out / name / "sweep.md").read_text())
    print(f"wrote {path}")
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
