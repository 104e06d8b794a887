"""Minibatches in a seeded, reproducible order that a resumed run can re-enter mid-epoch.

Each epoch's order depends only on the run seed and the epoch number, so resuming at (epoch, batch)
regenerates the order and skips the batches already trained on. A split may bring its own batch
sampler (a ``SampledSplit``: ``split.batch_sampler(batch_size, drop_last=...)`` with ``set_epoch``), e.g. one that
cycles through classes; otherwise batches are a seeded permutation. Incomplete last batches are
dropped in training: BatchNorm and the z-shuffle of the CI critics need full batches.
"""

from __future__ import annotations

from typing import Any

import torch

from wynerkit.data.batching import collate_pairs
from wynerkit.interfaces import BatchedSplit, SampledSplit
from wynerkit.sample import Sample


def epoch_batches(split: Any, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The index lists of one training epoch."""
    if isinstance(split, SampledSplit):
        sampler = split.batch_sampler(batch_size, drop_last=True)
        sampler.set_epoch(epoch)
        return [list(b) for b in sampler]
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(split), generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def fetch(split: Any, indices: list[int]) -> dict[str, Any]:
    """One collated batch: a ``__getitems__`` batch as is, else the items collated."""
    if isinstance(split, BatchedSplit):
        return collate_pairs(split.__getitems__(indices))
    return collate_pairs([split[i] for i in indices])


def as_sample(batch: dict[str, Any], device: torch.device) -> Sample:
    return Sample(x=batch["x"].to(device, non_blocking=True), y=batch["y"].to(device, non_blocking=True))


def in_order(split: Any, batch_size: int, limit: int | None = None) -> list[list[int]]:
    """Consecutive index lists for evaluation (the last one may be short)."""
    n = len(split) if limit is None else min(len(split), limit)
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def evenly_spaced(split: Any, n: int) -> list[int]:
    """``min(n, len(split))`` distinct indices spread over a split, in order, starting at 0.

    Figures then show many classes, not the first one only. Asking for more than the split holds
    gives every item once (never some twice and others not at all): callers that need exactly ``n``
    check the split's size themselves.
    """
    size = len(split)
    count = min(n, size)
    return [i * size // count for i in range(count)]
