"""Stopping on a NaN or infinite loss, before the model is updated with it."""

from __future__ import annotations

import torch
from torch import Tensor

from wynerkit.errors import WynerkitError
from wynerkit.training.distributed import Cluster


class TrainingDiverged(WynerkitError):
    """A loss became NaN or infinite; nothing after the last good checkpoint was written."""


def check_finite(values: dict[str, Tensor], step: int, what: str, cluster: Cluster) -> None:
    """Stop on a NaN or infinite loss, naming the term and step (one device sync per phase).

    Every rank checks the mean over the ranks, so a NaN on any rank stops all of them together.
    """
    if not values:
        return
    shared = cluster.mean(torch.stack([v.detach().float() for v in values.values()]))
    if bool(torch.isfinite(shared).all()):
        return
    bad, value = next((name, float(v)) for name, v in zip(values, shared, strict=True) if not torch.isfinite(v))
    raise TrainingDiverged(
        f"step {step}: {what} {bad} is {value}; training stopped before updating with it, "
        "the checkpoints written so far are intact (lower train.lr, set train.grad_clip, or check the data)"
    )
