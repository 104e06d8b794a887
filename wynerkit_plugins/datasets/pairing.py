"""Label-matched pairing of two labelled pools (the MMVAE procedure behind MNIST-SVHN "add-one").

An item of class ``l`` on side a pairs with an item of class ``(l + offset) mod num_classes`` on side b.
Per class, both pools are cut to the same size ``n`` and ``pairs_per_item`` (m) independent random
permutations of each cut pool are concatenated, so every item that is kept appears exactly m times,
each time with a random partner. Validation pairs are drawn from items held out of the training pools
on both sides, so no valid item ever appears in a training pair (the authors' code let them overlap).
Every split draws from its own ``SeedSequence`` stream, and pair indices are cached under a key that
records every input, so a run's pairing is reproducible and inspectable.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from wynerkit.atomic import write_npz_atomic

PairIndices = tuple[np.ndarray, np.ndarray]
SPLIT_NAMES = ("train", "valid", "test")


def _check_labels(labels: np.ndarray, num_classes: int, side: str) -> None:
    """Labels outside ``0..num_classes-1`` would silently never pair, so they are an error."""
    if labels.ndim != 1:
        raise ValueError(f"labels_{side} must be 1-D, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels_{side} range {labels.min()}..{labels.max()}, expected 0..{num_classes - 1}")


def pair_by_label(
    labels_a: np.ndarray,
    labels_b: np.ndarray,
    *,
    offset: int,
    pairs_per_item: int,
    max_per_class: int | None,
    rng: np.random.Generator,
    num_classes: int = 10,
) -> PairIndices:
    """Index pairs ``(idx_a, idx_b)`` with ``labels_b[idx_b] == (labels_a[idx_a] + offset) % num_classes``.

    For each class ``l`` in order 0..num_classes-1, with A = indices of ``labels_a == l`` and
    B = indices of ``labels_b == (l + offset) % num_classes``:

    1. ``n = min(len(A), len(B), max_per_class)`` (no cap when ``max_per_class`` is None);
    2. A and B are each randomly permuted and cut to their first n entries. MMVAE cuts to the first
       n after sorting by label (about file order); a random cut keeps the sizes but does not favour
       the items at the start of a file when a pool is larger than n;
    3. m = ``pairs_per_item`` independent random permutations of the cut A are concatenated, and
       likewise of the cut B, giving ``m * n`` pairs (as MMVAE's ``rand_match_on_idx``).

    Classes are concatenated in order. Every kept item appears exactly m times, so when n equals
    the size of A every a-item of that class appears exactly m times. Returns int64 index arrays of
    equal length into ``labels_a`` and ``labels_b``.
    """
    if pairs_per_item < 1:
        raise ValueError(f"pairs_per_item must be at least 1, got {pairs_per_item}")
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(f"max_per_class must be at least 1 or None, got {max_per_class}")
    labels_a, labels_b = np.asarray(labels_a), np.asarray(labels_b)
    _check_labels(labels_a, num_classes, "a")
    _check_labels(labels_b, num_classes, "b")

    def repeat_permuted(pool: np.ndarray, n: int) -> np.ndarray:
        kept = rng.permutation(pool)[:n]
        return rng.permuted(np.broadcast_to(kept, (pairs_per_item, n)), axis=1).ravel()

    parts_a, parts_b = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for label in range(num_classes):
        pool_a = np.flatnonzero(labels_a == label)
        pool_b = np.flatnonzero(labels_b == (label + offset) % num_classes)
        n = min(len(pool_a), len(pool_b))
        if max_per_class is not None:
            n = min(n, max_per_class)
        parts_a.append(repeat_permuted(pool_a, n))
        parts_b.append(repeat_permuted(pool_b, n))
    return np.concatenate(parts_a).astype(np.int64, copy=False), np.concatenate(parts_b).astype(np.int64, copy=False)


def stratified_holdout(labels: np.ndarray, holdout_size: Callable[[int], int], rng: np.random.Generator) -> PairIndices:
    """Disjoint sorted ``(kept, held_out)`` indices into ``labels``.

    ``holdout_size(size)`` random items of each class of that size are held out; holding out per class
    keeps every class in both parts, whatever the class balance.
    """
    labels = np.asarray(labels)
    held = [np.empty(0, np.int64)]
    for label in np.unique(labels):
        pool = np.flatnonzero(labels == label)
        held.append(rng.permutation(pool)[: holdout_size(len(pool))])
    is_held = np.zeros(len(labels), bool)
    is_held[np.concatenate(held)] = True
    return np.flatnonzero(~is_held).astype(np.int64, copy=False), np.flatnonzero(is_held).astype(np.int64, copy=False)


def carve_validation(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> PairIndices:
    """Disjoint sorted ``(train, valid)`` indices into ``labels``; valid holds ``round(fraction * size)`` per class."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    return stratified_holdout(labels, lambda size: round(fraction * size), rng)


def of_classes(labels: np.ndarray, pool: np.ndarray, classes: Sequence[int] | None) -> np.ndarray:
    """The entries of ``pool`` (indices into ``labels``) whose label is one of ``classes``; all when None."""
    if classes is None:
        return pool
    return pool[np.isin(np.asarray(labels)[pool], np.asarray(classes, dtype=np.int64))]


def make_pair_splits(
    train_a_labels: np.ndarray,
    train_b_labels: np.ndarray,
    test_a_labels: np.ndarray,
    test_b_labels: np.ndarray,
    *,
    offset: int,
    pairs_per_item: int,
    max_per_class: int | None,
    valid_fraction: float,
    seed: int,
    train_classes: Sequence[int] | None = None,
    test_classes: Sequence[int] | None = None,
) -> dict[str, PairIndices]:
    """Train, valid and test pairs; train/valid index the training arrays, test the test arrays.

    ``valid_fraction`` of each training pool (both sides, stratified) is held out before pairing, and
    valid pairs are formed only among held-out items, so no item of a valid pair is in a training pair.
    The carving and each split use independent streams spawned from ``SeedSequence(seed)``.

    ``train_classes`` (train and valid) and ``test_classes`` (test) restrict both sides' pools to items
    of those classes (None: every class), so a split's x and y labels are all listed classes: with
    ``offset`` k, an a-item of class l is paired only when (l + k) mod 10 is listed too. The pools are
    restricted after the valid carving, so a restriction to every class gives the unrestricted pairs.
    """
    carve_seq, *split_seqs = np.random.SeedSequence(seed).spawn(1 + len(SPLIT_NAMES))
    carve_rng = np.random.default_rng(carve_seq)
    pools_a = carve_validation(train_a_labels, valid_fraction, carve_rng)
    pools_b = carve_validation(train_b_labels, valid_fraction, carve_rng)
    test_pools = (np.arange(len(test_a_labels), dtype=np.int64), np.arange(len(test_b_labels), dtype=np.int64))
    sources = {
        "train": (train_a_labels, train_b_labels, pools_a[0], pools_b[0], train_classes),
        "valid": (train_a_labels, train_b_labels, pools_a[1], pools_b[1], train_classes),
        "test": (test_a_labels, test_b_labels, *test_pools, test_classes),
    }
    splits = {}
    for (name, (labels_a, labels_b, pool_a, pool_b, classes)), seq in zip(sources.items(), split_seqs, strict=True):
        pool_a, pool_b = of_classes(labels_a, pool_a, classes), of_classes(labels_b, pool_b, classes)
        local_a, local_b = pair_by_label(
            np.asarray(labels_a)[pool_a],
            np.asarray(labels_b)[pool_b],
            offset=offset,
            pairs_per_item=pairs_per_item,
            max_per_class=max_per_class,
            rng=np.random.default_rng(seq),
        )
        splits[name] = (pool_a[local_a], pool_b[local_b])
    return splits


def _load_cached(path: Path, key_json: str) -> dict[str, PairIndices] | None:
    """The splits stored at ``path``, or None when it is missing, unreadable, malformed or for another key."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key_json:
                return None
            splits = {name: (stored[f"{name}_a"], stored[f"{name}_b"]) for name in SPLIT_NAMES}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    well_formed = all(
        a.dtype == b.dtype == np.int64 and a.ndim == b.ndim == 1 and len(a) == len(b) for a, b in splits.values()
    )
    return splits if well_formed else None


def cached_pair_splits(
    cache_dir: Path,
    key_fields: dict,
    compute: Callable[[], dict[str, PairIndices]],
    *,
    also_read: Sequence[Path] = (),
) -> dict[str, PairIndices]:
    """``compute()``'s splits, stored in ``cache_dir`` under a SHA-256 of the canonical JSON of ``key_fields``.

    ``key_fields`` must name every input of the pairing (parameters, seed, label fingerprints) so a
    change to any of them misses the cache. The file is an ``.npz`` without pickles that also records
    the key JSON; it is written to a temporary file and renamed, so readers never see a partial file,
    and a file that cannot be read back is recomputed and replaced. ``also_read`` are older caches
    that are looked in after ``cache_dir`` and never written.
    """
    key_json = json.dumps(key_fields, sort_keys=True, separators=(",", ":"), allow_nan=False)
    file_name = f"{hashlib.sha256(key_json.encode()).hexdigest()}.npz"
    for directory in (cache_dir, *also_read):
        cached = _load_cached(Path(directory) / file_name, key_json)
        if cached is not None:
            return cached
    path = Path(cache_dir) / file_name
    splits = {name: (np.asarray(a, np.int64), np.asarray(b, np.int64)) for name, (a, b) in compute().items()}
    arrays = {f"{name}_{side}": idx for name, pair in splits.items() for side, idx in zip("ab", pair, strict=True)}
    write_npz_atomic(path, key=np.array(key_json), **arrays)
    return splits
