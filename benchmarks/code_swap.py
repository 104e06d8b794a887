"""Which code carries the digit? Decode y from x's common code and the local code of another pair's y.

Conditional generation x -> y decodes y(z, v) with z from x and v drawn from the prior. It is coherent
only when z carries the digit. This script reads, for trained add-one runs, where the digit lives:
for each test pair (x, y) it takes z = encode_z(x) and the local code v' = encode_v(z, y') of another
test pair's y', decodes y(z, v'), and asks the coherence evaluator's digit classifier which digit it
shows:

- ``follows_z``: the share read as x's partner digit (what z says);
- ``follows_v``: the share read as y''s digit (what the swapped local code says);
- ``prior_v``: the share read as x's partner digit when v comes from the prior (coherence x -> y);
- ``joint_follows_z``: as ``follows_z``, with z from the joint encoder q(z|x,y) instead of x alone. When
  this is high and ``follows_z`` low, the decoder reads the digit from z but x's own z does not hold it;
- ``reconstructed``: the share read as the pair's own digit when y is decoded from its own joint z and
  its own local code (all pairs): how legible the model's reconstructions are to the classifier at all.

The same is measured the other way (x from y's z and another pair's local code u'). Only pairs
whose partner digits differ count, so the two readings cannot agree by accident. Every model is read
through the ``BimodalModel`` interface (``encode_z``, ``encode_u``/``encode_v``, ``decode``).

Writes ``benchmarks/results/code_swap.json``: one row per run (model, lambda_ci, IIAE's recon_scale, seed,
the ten shares) and the mean and std per model and setting.

    WYNERKIT_DATA=../shared/data python benchmarks/code_swap.py RUN_DIR [RUN_DIR ...] [--pairs 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from sweep_results import RESULTS, machine, require_data_root, summarise

from wynerkit.atomic import write_text_atomic
from wynerkit.data.loading import fetch
from wynerkit.evaluation.trained_run import open_trained
from wynerkit.plugins import get_host
from wynerkit.rundir.paths import RunDir
from wynerkit_plugins.evaluators.coherence import CoherenceParams
from wynerkit_plugins.shared.digit_classifier import digit_classifiers
from wynerkit_plugins.shared.evaluated_items import chosen_positions

SHARES = ("follows_z", "follows_v", "prior_v", "joint_follows_z", "reconstructed")
SEED = 0


@torch.no_grad()
def swap_reads(run_dir: Path, pairs: int, data_root: Path) -> dict[str, float]:
    """The ten shares of one trained run (see the module doc), on ``pairs`` test pairs."""
    parts = open_trained(run_dir, get_host().registry)
    model, test = parts.model, parts.data.split("test")
    judges = digit_classifiers(parts.data, CoherenceParams(), data_root=data_root, device=parts.device)
    generator = torch.Generator(parts.device).manual_seed(SEED)
    positions = chosen_positions(len(test), pairs, SEED)
    batch = fetch(test, positions.tolist())
    x, y = batch["x"].to(parts.device), batch["y"].to(parts.device)
    labels = {"x": torch.as_tensor(batch["x_label"]), "y": torch.as_tensor(batch["y_label"])}
    other = torch.randperm(len(positions), generator=torch.Generator().manual_seed(SEED))
    data = {"x": x, "y": y}
    joint = model.encode_z(x=x, y=y)
    shares: dict[str, float] = {}
    for source, target, local in (("x", "y", "v"), ("y", "x", "u")):
        z = model.encode_z(**{source: data[source]})
        encode_local = model.encode_v if local == "v" else model.encode_u
        swapped = encode_local(z[other], data[target][other])
        prior = torch.randn(swapped.shape, generator=generator, device=parts.device)
        read = {
            kind: judges[target].predict(model.decode(common, **{local: code}).require(target)[0]).cpu()
            for kind, common, code in (
                ("swapped", z, swapped),
                ("prior", z, prior),
                ("joint", joint, swapped),
                ("own", joint, encode_local(joint, data[target])),
            )
        }
        own, theirs = labels[target], labels[target][other]
        differ = own != theirs
        direction = f"{source}2{target}"
        shares[f"{direction}.follows_z"] = float((read["swapped"] == own)[differ].double().mean())
        shares[f"{direction}.follows_v"] = float((read["swapped"] == theirs)[differ].double().mean())
        shares[f"{direction}.prior_v"] = float((read["prior"] == own).double().mean())
        shares[f"{direction}.joint_follows_z"] = float((read["joint"] == own)[differ].double().mean())
        shares[f"{direction}.reconstructed"] = float((read["own"] == own).double().mean())
    return shares


def row_of(run_dir: Path, shares: dict[str, float]) -> dict[str, Any]:
    spec = json.loads(RunDir(run_dir).resolved_spec.read_text(encoding="utf-8"))
    model = spec["model"]["name"]
    lambda_ci = None if model == "iiae" else spec["objective"]["lambda_ci"]
    iiae = spec["objective"]["terms"].get("IIAE")
    recon_scale = iiae["recon_scale"] if isinstance(iiae, dict) else None  # IIAE's reconstruction weight
    row = {"run": str(run_dir), "model": model, "lambda_ci": lambda_ci, "recon_scale": recon_scale}
    return row | {"seed": spec["seed"], **shares}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="trained run directories of a paired digit dataset")
    parser.add_argument("--pairs", type=int, default=2000, help="test pairs per run (a seeded subset)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    data_root = require_data_root("mnist/")
    rows = []
    for run_dir in args.runs:
        rows.append(row_of(run_dir, swap_reads(run_dir, args.pairs, data_root)))
        print(json.dumps(rows[-1]), flush=True)
    metrics = [f"{d}.{share}" for d in ("x2y", "y2x") for share in SHARES]
    result = {
        "pairs": args.pairs,
        "machine": machine(),
        "rows": rows,
        "summary": summarise(rows, metrics, ("model", "lambda_ci", "recon_scale")),
    }
    path = args.results / "code_swap.json"
    write_text_atomic(path, json.dumps(result, indent=2, allow_nan=False) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
