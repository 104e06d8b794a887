"""Paired digit datasets: the add-one relation, disjoint splits, batches, and reproducible pairing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from wynerkit import BuildContext
from wynerkit.batching import collate_pairs
from wynerkit.data_root import CACHE_ENV, DATA_ENV
from wynerkit.spec import SpecBuilder
from wynerkit.testing import check_component
from wynerkit_plugins.datasets.mnist import MNIST_SOURCE
from wynerkit_plugins.datasets.pairing import make_pair_splits

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


def split_labels(dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The x and y digit of every pair of a split."""
    part = dataset.split(split)
    return part.x_labels.numpy()[part.x_index.numpy()], part.y_labels.numpy()[part.y_index.numpy()]


def test_zero_shot_splits_hold_only_the_requested_digits(builtin_host, data_root):
    dataset = build(
        builtin_host,
        offset=0,
        train_classes=[0, 1, 2, 3, 4, 5, 6],
        test_classes=[9, 7, 8],
        root=str(data_root),
        **SMALL,
    )
    for split, digits in (("train", set(range(7))), ("valid", set(range(7))), ("test", {7, 8, 9})):
        x, y = split_labels(dataset, split)
        assert np.array_equal(x, y)
        assert set(x.tolist()) == digits, split  # every requested digit, nothing else
    assert dataset.describe()["train_classes"] == list(range(7)) and dataset.describe()["test_classes"] == [7, 8, 9]
    queries = dataset.split("test").__getitems__(list(range(len(dataset.split("test")))))
    assert set(queries["x_label"].tolist()) == set(queries["y_label"].tolist()) == {7, 8, 9}


def test_with_an_offset_both_sides_keep_to_the_listed_digits(builtin_host, data_root):
    dataset = build(builtin_host, train_classes=[0, 1, 2, 3], test_classes=[4, 5, 8, 9], root=str(data_root), **SMALL)
    x, y = split_labels(dataset, "train")
    assert set(x.tolist()) == {0, 1, 2} and set(y.tolist()) == {1, 2, 3} and np.array_equal(y, x + 1)
    x, y = split_labels(dataset, "test")
    assert set(x.tolist()) == {4, 8} and set(y.tolist()) == {5, 9} and np.array_equal(y, x + 1)


def test_listing_every_digit_keeps_the_unrestricted_pairing():
    rng = np.random.default_rng(3)
    labels = [rng.integers(0, 10, size) for size in (500, 400, 200, 150)]
    settings = {"offset": 1, "pairs_per_item": 2, "max_per_class": None, "valid_fraction": 0.1, "seed": 5}
    plain = make_pair_splits(*labels, **settings)
    listed = make_pair_splits(*labels, **settings, train_classes=tuple(range(10)), test_classes=tuple(range(10)))
    for split in ("train", "valid", "test"):
        assert all(np.array_equal(a, b) for a, b in zip(plain[split], listed[split], strict=True))


def test_the_pair_cache_is_keyed_on_the_digits(builtin_host, data_root, cache_dir):
    def cached() -> set[str]:
        return {p.name for p in (cache_dir / "pairs").glob("*.npz")}

    build(builtin_host, offset=0, root=str(data_root), **SMALL)
    before = cached()
    a = build(builtin_host, offset=0, train_classes=[0, 1, 2], root=str(data_root), **SMALL)
    with_a = cached()
    assert len(with_a - before) == 1  # a new key, not the all-digits pairs
    again = build(builtin_host, offset=0, train_classes=[2, 0, 1], root=str(data_root), **SMALL)
    assert cached() == with_a  # the same digits in another order: the same key, read back
    assert np.array_equal(a.split("train").x_index.numpy(), again.split("train").x_index.numpy())
    build(builtin_host, offset=0, train_classes=[0, 1, 2], test_classes=[3], root=str(data_root), **SMALL)
    assert len(cached() - with_a) == 1
    every = build(builtin_host, offset=0, train_classes=list(range(10)), root=str(data_root), **SMALL)
    assert len(cached() - with_a) == 1  # listing all ten is no restriction: the default's pairs, read back
    assert every.describe()["train_classes"] == list(range(10))


def validate(builtin_host, **params):
    """``params`` validated as a mnist-syndigits spec entry."""
    component = builtin_host.registry.get("dataset", "mnist-syndigits")
    return SpecBuilder(builtin_host.registry).variant(component).model_validate({"name": component.name, **params})


def class_problems(builtin_host, **params) -> list[tuple[str, str]]:
    """The (field path, message) of every validation error of a mnist-syndigits entry."""
    with pytest.raises(ValidationError) as info:
        validate(builtin_host, **params)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()]


def test_class_lists_are_checked_with_errors_naming_the_field(builtin_host):
    assert class_problems(builtin_host, train_classes=[0, 10]) == [
        ("train_classes.1", "Input should be less than or equal to 9")
    ]
    ((where, message),) = class_problems(builtin_host, test_classes=[])
    assert where == "test_classes" and "at least 1 item" in message
    assert class_problems(builtin_host, offset=0, test_classes=[7, 8, 7]) == [
        ("test_classes", "Value error, digit 7 is listed more than once")
    ]
    assert class_problems(builtin_host, offset=2, train_classes=[1, 3, 6]) == [
        (
            "train_classes",
            "Value error, with offset 2, digit 6 pairs with no listed digit: x digit 6 needs y digit 8, "
            "y digit 6 needs x digit 4; list one of them or drop 6",
        )
    ]
    ((where, message),) = class_problems(builtin_host, test_classes=[4])  # offset 1: a lone digit has no partner
    assert where == "test_classes" and "digit 4 pairs with no listed digit" in message
    spec = validate(builtin_host, offset=5, train_classes=[6, 1], test_classes=[9, 4])
    assert spec.train_classes == (1, 6) and spec.test_classes == (4, 9)  # sorted: one cache key per set
    assert validate(builtin_host, offset=0, test_classes=[3]).test_classes == (3,)  # same digits pair with themselves
