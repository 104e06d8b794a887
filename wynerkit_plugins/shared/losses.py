"""The per-item reconstruction errors the built-in modalities offer."""

from __future__ import annotations

from typing import Literal

from torch import Tensor


def per_item_error(output: Tensor, target: Tensor, loss: Literal["l1", "l2"]) -> Tensor:
    """Mean absolute (l1) or squared (l2) error over every non-batch dimension: shape ``[B]``."""
    error = output - target
    per_value = error.abs() if loss == "l1" else error.square()
    return per_value.flatten(1).mean(dim=1)
