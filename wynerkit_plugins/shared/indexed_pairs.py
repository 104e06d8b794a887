"""Pairs by index into two in-memory banks, fetched a whole batch at a time, and seeded valid carving.

Shared by the digit-pair, QMUL and Sketchy datasets: a split is a list of (x row, y row) index pairs into two
tensors, so ``__getitems__`` serves a DataLoader batch with two tensor gathers and no per-item Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from wynerkit import Pair
from wynerkit.data.batching import stack_pairs

VALID_STREAM = 0
"""Spawn key of the random stream that chooses what a dataset holds out as its valid split."""


class IndexedPairs(torch.utils.data.Dataset[Pair]):
    """Item k is ``(x[x_index[k]], y[y_index[k]])`` with the labels of those rows.

    ``transform`` is applied to each gathered batch of rows of x and of y: banks can stay compact
    (e.g. uint8 images) and be converted only for the rows a batch uses.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        x_labels: torch.Tensor,
        y_labels: torch.Tensor,
        x_index: torch.Tensor,
        y_index: torch.Tensor,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if len(x_index) != len(y_index):
            raise ValueError(f"x_index and y_index must have the same length, got {len(x_index)} and {len(y_index)}")
        self.x, self.y = x, y
        self.x_labels, self.y_labels = x_labels, y_labels
        self.x_index, self.y_index = x_index, y_index
        self.transform = transform or (lambda rows: rows)

    def __len__(self) -> int:
        return len(self.x_index)

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        """A batched Pair (what torch's DataLoader asks for when it exists; see ``wynerkit.data.batching``)."""
        which = torch.as_tensor(indices, dtype=torch.long)
        i, j = self.x_index[which], self.y_index[which]
        return stack_pairs(self.transform(self.x[i]), self.transform(self.y[j]), self.x_labels[i], self.y_labels[j])

    def __getitem__(self, index: int) -> Pair:
        batch = self.__getitems__([index])
        return {
            "x": batch["x"][0],
            "y": batch["y"][0],
            "x_label": int(batch["x_label"][0]),
            "y_label": int(batch["y_label"][0]),
        }


def carve_valid(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted positions ``(train, valid)`` of ``range(n)``; valid holds ``round(fraction * n)`` of them.

    A positive fraction holds out at least one position. The choice depends only on ``(n, fraction, seed)``.
    """
    n_valid = max(1, round(fraction * n)) if fraction > 0 else 0
    if n_valid >= n:
        raise ValueError(f"cannot hold out {n_valid} of {n} items as valid and keep any for training")
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(VALID_STREAM,)))
    order = rng.permutation(n)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])
