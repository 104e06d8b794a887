"""Batches of pairs: datasets may hand over whole batches instead of one item at a time.

A dataset whose ``__getitems__(indices)`` returns one ``Pair`` dict of stacked tensors (what torch's
DataLoader calls when it exists) skips per-item Python work; ``collate_pairs`` passes such a batch
through and collates a list of single items as usual.
"""

from __future__ import annotations

from typing import Any

import torch


def collate_pairs(batch: Any) -> Any:
    """The DataLoader ``collate_fn`` for pair datasets: a pre-batched dict as is, else default collation."""
    if isinstance(batch, dict):
        return batch
    return torch.utils.data.default_collate(batch)


def stack_pairs(x: torch.Tensor, y: torch.Tensor, x_label: torch.Tensor, y_label: torch.Tensor) -> dict[str, Any]:
    """A batched Pair: tensors with a leading batch dimension; labels int64 (-1 where unknown)."""
    return {"x": x, "y": y, "x_label": x_label.long(), "y_label": y_label.long()}
