"""An exponential moving average of the generator's weights, the copy that is evaluated."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Shadow weights ``s <- d s + (1 - d) w`` with warm-up ``d_t = min(decay, (1 + t) / (10 + t))``.

    Without the warm-up a decay of 0.999 would keep the random initial weights for the first
    thousands of steps, and a short run would be evaluated on them. Buffers (BatchNorm statistics)
    are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        shadow = list(self.model.parameters())
        torch._foreach_lerp_(shadow, [p.detach() for p in model.parameters()], 1.0 - decay)
        for mine, theirs in zip(self.model.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)
