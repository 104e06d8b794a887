"""Where training stands (step, epoch, batch) and the logged values summed since the last log line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from wynerkit.training.distributed import Cluster


@dataclass
class Position:
    """How far training got: iterations done, and where in which epoch."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


@dataclass
class Window:
    """Sums of logged values since the last log line (kept on the device: no sync per step).

    Each value is averaged over the steps that reported it (``counts``): a diagnostic measured only on the
    last step of a window (``pairing.*``) is logged as that step's value.
    """

    sums: dict[str, Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, values: dict[str, Tensor]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
            self.counts[name] = self.counts.get(name, 0) + 1

    def flush(self, cluster: Cluster) -> dict[str, float]:
        """The means since the last flush (averaged over the ranks of a distributed run); starts a new window."""
        names = list(self.sums)
        if names:
            counts = torch.tensor([self.counts[n] for n in names], dtype=torch.float32)
            stacked = torch.stack([self.sums[n].float() for n in names])
            means = cluster.mean(stacked / counts.to(stacked.device)).tolist()
        else:
            means = []
        self.sums, self.counts = {}, {}
        return dict(zip(names, means, strict=True))

    def share(self, cluster: Cluster) -> None:
        """Replace each rank's sums by their mean over the ranks: later flushes give the same numbers, and
        the sums rank 0 checkpoints stand for every rank's."""
        if self.sums:
            shared = cluster.mean(torch.stack(list(self.sums.values())))
            self.sums = dict(zip(self.sums, shared.unbind(), strict=True))


def window_counts(state: dict[str, Any], sums: dict[str, Tensor]) -> dict[str, int]:
    """The window's per-value step counts; checkpoints before per-value counts stored one count for all."""
    if "window_counts" in state:
        return state["window_counts"]
    return dict.fromkeys(sums, state["window_count"])
