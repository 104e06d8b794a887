"""A/B runs behind "what makes the model learn": short trainings with diagnostics of where the content goes.

Trains a spec (with ``--set`` overrides) in fp32 on one thread and, every ``--every`` steps, evaluates
the EMA model: coherence (``coherence`` evaluator on ``--pairs`` test pairs and as many joint samples)
and, on about 500 test pairs, whether the digit travels through z or through the local codes:

- ``y|zx,vtrue``: y decoded from q(z|x) with the *true* y's local code q(v|z,y), read by the y
  classifier (likewise ``y|zxy,vtrue`` from q(z|x,y), ``x|zy,utrue``); high values with a low
  ``coherence.x2y`` mean the decoder takes the digit from the local code;
- ``y|zx,v0`` / ``x|zy,u0``: decoded with the local code at the prior's mean;
- ``zstd`` / ``ustd`` / ``vstd``: mean per-dimension std of the codes (the prior has 1);
- the last logged ``term.R_*``, ``term.Z_*``, ``accuracy.*`` and ``pairing.*`` training values.

Prints one JSON line per evaluation (``--tag`` names the variant); ``--results FILE`` appends them.

    WYNERKIT_DATA=DATA python benchmarks/learning_ab.py specs/mnist-mnist.yaml --steps 600 --every 200 \\
        --tag no-z --set objective.terms.Z_x2y=0 --set objective.terms.Z_y2x=0
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from wynerkit.components import BuildContext
from wynerkit.data.loading import evenly_spaced, fetch
from wynerkit.evaluation.evaluate import eval_context
from wynerkit.plugins import get_host
from wynerkit.spec.loading import load_spec
from wynerkit.training.assembly import assemble
from wynerkit.training.trainer import Trainer
from wynerkit_plugins.evaluators.coherence import Coherence, CoherenceParams
from wynerkit_plugins.shared.digit_classifier import digit_classifiers

LOGGED = ("term.R", "term.Z", "accuracy", "pairing")


@torch.no_grad()
def where_the_digit_goes(model, data, judges, pairs: int = 500) -> dict[str, float]:
    """Classifier accuracy of decodings with true and prior-mean local codes, and the codes' spread."""
    test = data.split("test")
    batch = fetch(test, evenly_spaced(test, min(pairs, len(test))))
    x, y = batch["x"], batch["y"]
    zx, zy, zxy = model.encode_z(x=x), model.encode_z(y=y), model.encode_z(x=x, y=y)

    def reads(side: str, decoded: torch.Tensor) -> float:
        return float((judges[side].predict(decoded) == torch.as_tensor(batch[f"{side}_label"])).float().mean())

    def zeros(name: str) -> torch.Tensor:
        return torch.zeros(len(x), model.latent[name])

    return {
        "y|zx,vtrue": reads("y", model.decode(zx, v=model.encode_v(zx, y)).y),
        "y|zxy,vtrue": reads("y", model.decode(zxy, v=model.encode_v(zxy, y)).y),
        "x|zy,utrue": reads("x", model.decode(zy, u=model.encode_u(zy, x)).x),
        "y|zx,v0": reads("y", model.decode(zx, v=zeros("v")).y),
        "x|zy,u0": reads("x", model.decode(zy, u=zeros("u")).x),
        "zstd": float(zxy.std(0).mean()),
        "ustd": float(model.encode_u(zxy, x).std(0).mean()),
        "vstd": float(model.encode_v(zxy, y).std(0).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--set", action="append", default=[], help="spec override KEY=VALUE (repeatable)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--pairs", type=int, default=1000, help="coherence test pairs and joint samples")
    parser.add_argument("--tag", default="")
    parser.add_argument("--results", type=Path, help="append the JSON lines to this file")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    registry = get_host().registry
    forced = [f"train.max_steps={args.steps}", "train.epochs=null", "train.checkpoint.every=1000000000"]
    spec = load_spec(args.spec, registry, [*args.set, *forced, "train.precision=fp32"]).spec
    parts = assemble(spec, registry)
    run_dir = Path(tempfile.mkdtemp(prefix="learning-ab-"))
    trainer = Trainer(parts, run_dir)
    data_root = BuildContext(registry=registry, seed=spec.seed).data_root
    coherence = Coherence(CoherenceParams(max_test_pairs=args.pairs, joint_samples=args.pairs), data_root)
    judges = digit_classifiers(parts.data, coherence.params, data_root=coherence.data_root, device=parts.device)
    started = time.perf_counter()
    for target in range(args.every, args.steps + 1, args.every):
        trainer.total = target
        trainer.fit()
        model = trainer.ema.model.eval()
        with torch.no_grad():
            metrics = coherence.evaluate(eval_context(run_dir, model, parts.data, parts.device, spec.seed))
        last = next((r for r in reversed(trainer.log.read()) if "loss.generator" in r), {})
        row = {"tag": args.tag, "spec": args.spec, "overrides": args.set, "step": target}
        row["wall"] = round(time.perf_counter() - started, 1)
        row |= {k: round(v, 3) for k, v in metrics.items() if k.startswith("coherence")}
        row |= {k: round(v, 3) for k, v in last.items() if k.startswith(LOGGED)}
        row |= {k: round(v, 3) for k, v in where_the_digit_goes(model, parts.data, judges).items()}
        print(json.dumps(row), flush=True)
        if args.results:
            with args.results.open("a", encoding="utf-8") as out:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
