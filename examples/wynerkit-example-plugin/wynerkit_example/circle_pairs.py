"""The ``circle-pairs`` dataset: two noisy views of one common angle.

It is the smallest data on which the Wyner decomposition can be checked by eye. The angle
``theta ~ Uniform(0, 2pi)`` is the *common* information of the pair; each view also has a random
radius the other view knows nothing about (its *local* information)::

    x = r_x * (cos theta,            sin theta)            + noise * N(0, I)
    y = r_y * (cos(theta + offset),  sin(theta + offset))  + noise * N(0, I)

with ``r_x, r_y ~ Uniform(0.5, 1.5)`` drawn independently. A model with a common latent ``z`` and
local latents ``u``, ``v`` should therefore keep the angle (shifted by ``offset``) when it
translates x -> y, and redraw the radius.
"""

from __future__ import annotations

import hashlib
import math
from typing import Annotated, Any

import torch
from pydantic import Field, PositiveInt

from wynerkit import BuildContext, ComponentParams, Split
from wynerkit_example.paired_split import PairedSplit

TWO_PI = 2 * math.pi
LABEL_BINS = 8
"""Labels are the bin of the common angle: ``floor(theta / (2pi / 8))`` in ``0..7``."""
RADIUS_RANGE = (0.5, 1.5)
"""Each view's radius is drawn uniformly from this range; bounded away from 0 so the angle stays
recoverable from a noisy point."""
SPLITS: tuple[Split, ...] = ("train", "valid", "test")


class CirclePairsParams(ComponentParams):
    """What a spec may set for ``circle-pairs``; wynerkit validates the spec entry against it."""

    n_train: Annotated[PositiveInt, Field(description="number of training pairs")] = 2048
    n_valid: Annotated[PositiveInt, Field(description="number of validation pairs")] = 256
    n_test: Annotated[PositiveInt, Field(description="number of test pairs")] = 256
    noise: Annotated[
        float, Field(ge=0, allow_inf_nan=False, description="std of the Gaussian noise on each coordinate")
    ] = 0.05
    offset: Annotated[
        float, Field(allow_inf_nan=False, description="angle (radians) by which y's direction is rotated from x's")
    ] = math.pi / 2


def angle_bin(theta: torch.Tensor) -> torch.Tensor:
    """The label of an angle in [0, 2pi): which of the 8 equal sectors it falls in."""
    bins = torch.floor(torch.remainder(theta, TWO_PI) / (TWO_PI / LABEL_BINS)).long()
    return bins.clamp_(0, LABEL_BINS - 1)  # remainder can round up to exactly 2pi in float


def split_seed(seed: int, split: Split) -> int:
    """A 63-bit seed for one split, derived from the run seed.

    Each split has its own random stream, so resizing one split never changes the items of
    another, and the splits are disjoint (independent continuous draws never coincide).
    """
    digest = hashlib.sha256(f"wynerkit-example/circle-pairs/{seed}/{split}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class CirclePairs:
    """A ``wynerkit.DatasetProvider`` of circle pairs; items are ``wynerkit.Pair`` dicts."""

    x_shape: tuple[int, ...] = (2,)
    y_shape: tuple[int, ...] = (2,)

    def __init__(self, params: CirclePairsParams, seed: int = 0) -> None:
        self.params = params
        self.seed = seed
        sizes = {"train": params.n_train, "valid": params.n_valid, "test": params.n_test}
        self._splits = {split: self._draw(sizes[split], split_seed(seed, split)) for split in SPLITS}

    def _draw(self, n: int, seed: int) -> PairedSplit:
        # float64 for the geometry so the common-angle relation holds to float32 precision.
        generator = torch.Generator().manual_seed(seed)
        theta = torch.rand(n, generator=generator, dtype=torch.float64) * TWO_PI
        low, high = RADIUS_RANGE
        radii = low + (high - low) * torch.rand(n, 2, generator=generator, dtype=torch.float64)
        noise = self.params.noise * torch.randn(n, 2, 2, generator=generator, dtype=torch.float64)
        phi = theta + self.params.offset
        x = radii[:, :1] * torch.stack([theta.cos(), theta.sin()], dim=1) + noise[:, 0]
        y = radii[:, 1:] * torch.stack([phi.cos(), phi.sin()], dim=1) + noise[:, 1]
        return PairedSplit(x.float(), y.float(), angle_bin(theta))

    def split(self, name: Split) -> PairedSplit:
        """The items of one split; the three splits never share an item."""
        if name not in self._splits:
            raise ValueError(f"unknown split {name!r}; expected one of: {', '.join(SPLITS)}")
        return self._splits[name]

    def describe(self) -> dict[str, Any]:
        """Facts for the run summary: sizes, the generating parameters, and that it is synthetic."""
        return {
            "dataset": "circle-pairs",
            "source": "synthetic (wynerkit-example-plugin)",
            "stand_in": False,
            "sizes": {split: len(items) for split, items in self._splits.items()},
            "noise": self.params.noise,
            "offset": self.params.offset,
            "radius_range": list(RADIUS_RANGE),
            "label_bins": LABEL_BINS,
            "seed": self.seed,
        }


def build_circle_pairs(params: CirclePairsParams, context: BuildContext) -> CirclePairs:
    """Two noisy 2-d views of a common angle; radii are local, labels are 8 angle bins."""
    return CirclePairs(params, seed=context.seed)
