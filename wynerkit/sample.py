"""The typed batch of variables (x, y, z, u, v) that flows between parts."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

import torch
from torch import Tensor

Variable = Literal["x", "y", "z", "u", "v"]
VARIABLES: tuple[Variable, ...] = ("x", "y", "z", "u", "v")


@dataclass(frozen=True)
class Sample:
    """A batch of tuples (x, y, z, u, v); any variable a distribution does not produce is None.

    All present tensors share the leading batch dimension. Samples are immutable: every helper
    returns a new Sample, so one sample of a distribution can be shared by many objective terms.
    """

    x: Tensor | None = None
    y: Tensor | None = None
    z: Tensor | None = None
    u: Tensor | None = None
    v: Tensor | None = None

    def __post_init__(self) -> None:
        sizes = {name: t.shape[0] for name, t in self.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"Sample variables disagree on the batch size: {sizes}")

    def items(self) -> list[tuple[Variable, Tensor]]:
        """The present variables, in the order x, y, z, u, v."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]

    @property
    def batch_size(self) -> int:
        present = self.items()
        if not present:
            raise ValueError("an empty Sample has no batch size")
        return present[0][1].shape[0]

    def require(self, *names: Variable) -> tuple[Tensor, ...]:
        """The named tensors, or a ValueError naming the ones that are missing."""
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"Sample lacks variable(s) {missing}; it has {[n for n, _ in self.items()]}")
        return tuple(getattr(self, n) for n in names)

    def select(self, *names: Variable) -> Sample:
        """A Sample holding only the named variables (each must be present)."""
        return Sample(**dict(zip(names, self.require(*names), strict=True)))

    def detach(self) -> Sample:
        """The same values cut from the autograd graph (what a critic step trains on)."""
        return Sample(**{n: t.detach() for n, t in self.items()})

    def to(self, device: torch.device | str) -> Sample:
        return Sample(**{n: t.to(device) for n, t in self.items()})

    def with_(self, **values: Tensor | None) -> Sample:
        """A copy with some variables replaced (or removed, with None)."""
        return replace(self, **values)

    def shuffled(self, name: Variable, generator: torch.Generator | None = None) -> Sample:
        """A copy with one variable permuted within the batch.

        Shuffling z against (x, y) turns samples of p(x, y, z) into samples of p(x, y) p(z): the
        negative side of a mutual-information critic.
        """
        (t,) = self.require(name)
        device = generator.device if generator is not None else t.device
        perm = torch.randperm(t.shape[0], generator=generator, device=device).to(t.device)
        return replace(self, **{name: t[perm]})
