"""What evaluators take from a dataset besides its splits: a seeded choice of positions, a display name."""

from __future__ import annotations

import torch
from torch import Tensor

from wynerkit import DatasetProvider


def chosen_positions(size: int, limit: int | None, seed: int) -> Tensor:
    """Every test position, or a seeded subset (test splits are grouped by class: a prefix would not do)."""
    if limit is None or limit >= size:
        return torch.arange(size)
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


def dataset_name(data: DatasetProvider) -> str:
    """The name the dataset gives in ``describe()``, else its class name (for titles and reports)."""
    name = data.describe().get("name")
    return str(name) if name else type(data).__name__
