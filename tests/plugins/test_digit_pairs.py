"""Paired digit datasets: the add-one relation, disjoint splits, batches, and reproducible pairing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from wynerkit import BuildContext
from wynerkit.batching import collate_pairs
from wynerkit.data_root import CACHE_ENV, DATA_ENV
from wynerkit.spec import SpecBuilder
from wynerkit.testing import check_component
from wynerkit_plugins.datasets.mnist import MNIST_SOURCE

SMALL = {"syndigits_train": 600, "syndigits_test": 200}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """One data root per module so SynDigits and pair caches are generated once."""
    return tmp_path_factory.mktemp("data")


def build(builtin_host, seed: int = 0, **params):
    """Validate ``params`` as a spec entry of mnist-syndigits and build it with ``seed``."""
    component = builtin_host.registry.get("dataset", "mnist-syndigits")
    spec = SpecBuilder(builtin_host.registry).variant(component).model_validate({"name": component.name, **params})
    return component.factory(spec, BuildContext(registry=builtin_host.registry, seed=seed))


def all_pairs(dataset, split):
    part = dataset.split(split)
    return part.x_index.numpy(), part.y_index.numpy(), part.__getitems__(list(range(len(part))))


def test_embedded_mnist_syndigits_is_add_one_with_disjoint_splits(builtin_host, data_root):
    dataset = check_component(builtin_host, "dataset", "mnist-syndigits", {**SMALL, "root": str(data_root)})
    assert dataset.describe()["stand_in"] is True and "SynDigits" in dataset.describe()["y_source"]
    seen_a, seen_b = {}, {}
    for split in ("train", "valid", "test"):
        idx_a, idx_b, batch = all_pairs(dataset, split)
        assert torch.equal(batch["y_label"], (batch["x_label"] + 1) % 10)
        assert batch["x"].shape[1:] == (1, 28, 28) and batch["y"].shape[1:] == (3, 32, 32)
        assert batch["x"].min() >= -1 and batch["x"].max() <= 1 and batch["x"].dtype == torch.float32
        seen_a[split], seen_b[split] = set(idx_a.tolist()), set(idx_b.tolist())
    assert not seen_a["train"] & seen_a["valid"] and not seen_b["train"] & seen_b["valid"]
    assert len(dataset.split("train")) == 4 * sum(
        min(int(c), int(d)) for c, d in zip(*count_pools(dataset, "train"), strict=True)
    )


def count_pools(dataset, split):
    part = dataset.split(split)
    a = np.bincount(part.x_labels.numpy()[np.unique(part.x_index.numpy())], minlength=10)
    b = np.bincount(part.y_labels.numpy()[np.unique(part.y_index.numpy())], minlength=10)
    return a, np.roll(b, -1)


def test_same_digit_pairing_and_the_cap(builtin_host, data_root):
    dataset = build(builtin_host, offset=0, pairs_per_item=2, max_per_class=20, root=str(data_root), **SMALL)
    _, _, batch = all_pairs(dataset, "train")
    assert torch.equal(batch["x_label"], batch["y_label"])
    assert torch.bincount(batch["x_label"], minlength=10).max().item() <= 2 * 20


def test_batches_flow_through_a_dataloader(builtin_host, data_root):
    dataset = build(builtin_host, root=str(data_root), **SMALL)
    loader = torch.utils.data.DataLoader(dataset.split("train"), batch_size=32, shuffle=True, collate_fn=collate_pairs)
    batch = next(iter(loader))
    assert batch["x"].shape == (32, 1, 28, 28) and batch["y"].shape == (32, 3, 32, 32)
    assert torch.equal(batch["y_label"], (batch["x_label"] + 1) % 10)
    single = dataset.split("train")[5]
    assert single["x"].shape == (1, 28, 28) and single["y_label"] == (single["x_label"] + 1) % 10


def test_pairing_depends_on_the_seed(builtin_host, data_root):
    a = build(builtin_host, seed=0, root=str(data_root), **SMALL).split("train").x_index.numpy()
    b = build(builtin_host, seed=1, root=str(data_root), **SMALL).split("train").x_index.numpy()
    again = build(builtin_host, seed=0, root=str(data_root), **SMALL).split("train").x_index.numpy()
    assert np.array_equal(a, again) and not np.array_equal(a, b)


def real_root() -> Path:
    root = os.environ.get(DATA_ENV)
    if not root or MNIST_SOURCE.files[0].locate(Path(root) / "mnist") is None:
        pytest.skip(f"set {DATA_ENV} to a data root holding MNIST (e.g. ../shared/data)")
    return Path(root)


HASH_PAIRS = """
import hashlib, sys
from wynerkit import BuildContext
from wynerkit.plugins import PluginHost, discover
from wynerkit.spec import SpecBuilder
host = PluginHost.load(discover(builtin_only=True))
component = host.registry.get("dataset", "mnist-syndigits")
spec = SpecBuilder(host.registry).variant(component).model_validate(
    {"name": "mnist-syndigits", "source": "full", "root": sys.argv[1], "syndigits_train": 3000, "syndigits_test": 600})
dataset = component.factory(spec, BuildContext(registry=host.registry, seed=7))
digest = hashlib.sha256()
for split in ("train", "valid", "test"):
    part = dataset.split(split)
    digest.update(part.x_index.numpy().tobytes())
    digest.update(part.y_index.numpy().tobytes())
print(digest.hexdigest())
"""


def test_full_mnist_pairing_is_identical_in_two_processes(tmp_path):
    """Two fresh processes, each with its own empty cache, compute the same pair indices."""
    root = real_root()
    digests = set()
    for cache in ("first", "second"):
        env = {**os.environ, CACHE_ENV: str(tmp_path / cache), "PYTHONHASHSEED": str(len(cache))}
        proc = subprocess.run([sys.executable, "-c", HASH_PAIRS, str(root)], capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        digests.add(proc.stdout.strip())
    assert len(digests) == 1 and len(next(iter(digests))) == 64


def test_full_mnist_pairs_are_all_add_one_and_disjoint(builtin_host, tmp_path):
    root = real_root()
    dataset = build(builtin_host, source="full", root=str(root), syndigits_train=3000, syndigits_test=600)
    train, valid = dataset.split("train"), dataset.split("valid")
    for part in (train, valid, dataset.split("test")):
        assert np.array_equal(
            part.y_labels.numpy()[part.y_index.numpy()], (part.x_labels.numpy()[part.x_index.numpy()] + 1) % 10
        )
    assert not set(train.x_index.numpy().tolist()) & set(valid.x_index.numpy().tolist())
    assert not set(train.y_index.numpy().tolist()) & set(valid.y_index.numpy().tolist())
    assert (
        len(train) == 4 * len(np.unique(train.x_index.numpy())) == 4 * len(np.unique(train.y_index.numpy()))
    )  # m = 4, each item 4x
    assert train.x_labels.numpy().shape == (60_000,)  # drawn from the full MNIST training pool
    assert train.x_index.numpy().dtype == np.int64 and train.y_index.numpy().dtype == np.int64
