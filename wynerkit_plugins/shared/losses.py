"""The per-item reconstruction errors the built-in modalities offer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor


def per_item_error(output: Tensor, target: Tensor, loss: Literal["l1", "l2"]) -> Tensor:
    """Mean absolute (l1) or squared (l2) error over every non-batch dimension: shape ``[B]``."""
    error = output - target
    per_value = error.abs() if loss == "l1" else error.square()
    return per_value.flatten(1).mean(dim=1)


def checked_item_error(
    output: Tensor,
    target: Tensor,
    loss: Literal["l1", "l2"],
    check_batch: Callable[[str, Tensor], None],
    expected: str,
) -> Tensor:
    """``per_item_error`` once ``check_batch`` accepts both batches and their sizes agree (``expected``: the shape)."""
    check_batch("reconstruction_loss output", output)
    check_batch("reconstruction_loss target", target)
    if output.shape[0] != target.shape[0]:
        raise ValueError(
            f"reconstruction_loss output and target must have the same shape {expected}, "
            f"got {list(output.shape)} and {list(target.shape)}"
        )
    return per_item_error(output, target, loss)
