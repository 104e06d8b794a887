"""Can the critic see the add-one pairing? Accuracy of real against shuffled pairs, by instance noise and lr.

The adversarial terms are the only signal that teaches the variational Wyner model which x goes with
which y on add-one data (the reconstructions can go through the local codes). This benchmark trains
the package's own critic (``adversarial-js``, the quickstart's sizes, one head on (x, y)) to tell
real training pairs from pairs with y shuffled in the batch, and records held-out accuracy every
100 steps. Writes ``benchmarks/results/pair_critic.json`` and ``pair_critic.png``.

    python benchmarks/pair_critic.py [--steps 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib
import torch

from wynerkit.components import BuildContext
from wynerkit.data.loading import evenly_spaced, fetch
from wynerkit.plugins import get_host
from wynerkit.sample import Sample
from wynerkit.spec.loading import load_spec
from wynerkit.training.assembly import assemble

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = [(0.25, 2e-3), (0.25, 5e-4), (0.1, 5e-4), (0.0, 5e-4)]
"""(instance noise, critic lr): the quickstart's, the paper's noise, and two lower noises."""


def accuracy(critic: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> float:
    shuffled = y[torch.randperm(len(y), generator=generator)]
    with torch.no_grad():
        real = critic.log_ratio("pair", Sample(x=x, y=y)) > 0
        fake = critic.log_ratio("pair", Sample(x=x, y=shuffled)) < 0
    return float((real.float().mean() + fake.float().mean()) / 2)


def learning_curve(parts, noise: float, lr: float, steps: int) -> list[dict[str, float]]:
    host = get_host()
    torch.manual_seed(0)
    spec = parts.spec.estimator.model_copy(update={"instance_noise": noise})
    critic = BuildContext(registry=host.registry, seed=0).build(
        spec, x=parts.model.x_modality, y=parts.model.y_modality, latent=parts.model.latent, heads={"pair": ("x", "y")}
    )
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.999))
    train, test = parts.data.split("train"), parts.data.split("test")
    held_out = fetch(test, evenly_spaced(test, 1024))
    generator = torch.Generator().manual_seed(0)
    curve, started = [], time.perf_counter()
    for step in range(1, steps + 1):
        batch = fetch(train, torch.randint(len(train), (64,), generator=generator).tolist())
        x, y = batch["x"], batch["y"]
        shuffled = y[torch.randperm(len(y), generator=generator)]
        loss = critic.critic_loss(
            critic.log_ratio("pair", Sample(x=x, y=y)), critic.log_ratio("pair", Sample(x=x, y=shuffled))
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            acc = accuracy(critic, held_out["x"], held_out["y"], generator)
            curve.append(
                {"step": step, "test_accuracy": round(acc, 4), "seconds": round(time.perf_counter() - started, 1)}
            )
            print(f"noise {noise} lr {lr}: step {step} accuracy {acc:.3f}", flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    host = get_host()
    parts = assemble(load_spec(ROOT / "specs" / "quickstart.yaml", host.registry).spec, host.registry)
    rows = [
        {"instance_noise": noise, "critic_lr": lr, "curve": learning_curve(parts, noise, lr, args.steps)}
        for noise, lr in SETTINGS
    ]
    result = {
        "what": "adversarial-js critic (quickstart sizes, one (x, y) head) trained to tell real add-one pairs "
        "from pairs with y shuffled in the batch; accuracy on 1,024 held-out test pairs (chance 0.5)",
        "data": "mnist-syndigits, embedded MNIST (4,000 train digits) x SynDigits (stand-in for SVHN)",
        "batch": 64,
        "steps": args.steps,
        "machine": {"cpu_threads": torch.get_num_threads(), "torch": torch.__version__},
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "pair_critic.json").write_text(json.dumps(result, indent=2) + "\n")
    figure, axes = plt.subplots(figsize=(5, 3.2), dpi=100)
    for row in rows:
        steps = [p["step"] for p in row["curve"]]
        axes.plot(
            steps,
            [p["test_accuracy"] for p in row["curve"]],
            label=f"noise {row['instance_noise']}, lr {row['critic_lr']}",
        )
    axes.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
    axes.set_xlabel("critic steps")
    axes.set_ylabel("held-out accuracy")
    axes.set_title("Critic: real vs shuffled add-one pairs", fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(RESULTS / "pair_critic.png")


if __name__ == "__main__":
    main()
