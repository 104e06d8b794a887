"""Test doubles for the digit evaluators: a tiny, easily classified paired "digit" dataset, a model
that always returns true pairs, and an EvalContext. Everything is generated here; nothing is downloaded.

A "digit" of class c is a fixed random +-1 template of class c plus noise, so a classifier trained for a
few epochs reads every test item right, and a perfect model must score coherence 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wynerkit import BimodalModel, DatasetProvider, Pair, Sample
from wynerkit.plugins import PluginHost
from wynerkit.testing import check_component
from wynerkit_plugins.datasets.digit_pairs import to_unit_range
from wynerkit_plugins.shared.indexed_pairs import IndexedPairs

SIDE = 16


def _bank(templates: Tensor, per_class: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """uint8 images: each class's template with noise, ``per_class`` of each class."""
    labels = torch.arange(10).repeat_interleave(per_class)
    pixels = 0.8 * templates[labels] + 0.2 * torch.randn(templates[labels].shape, generator=generator)
    return ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8), labels


class FakeDigits:
    """A ``DatasetProvider`` of paired template digits: y's class is (x's class + offset) mod 10."""

    x_shape = (1, SIDE, SIDE)
    y_shape = (3, SIDE, SIDE)

    def __init__(self, offset: int = 1, per_class: int = 60, repeats: int = 2, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        x_templates = torch.randn(10, *self.x_shape, generator=generator).sign()
        y_templates = torch.randn(10, *self.y_shape, generator=generator).sign()
        self.offset, self.seed = offset, seed
        self.splits = {}
        for split, n in (("train", per_class), ("valid", 3), ("test", max(per_class // 3, 2))):
            (x, x_labels), (y, y_labels) = _bank(x_templates, n, generator), _bank(y_templates, n, generator)
            # every x item with a random y item of the paired class, ``repeats`` times (the train split repeats items)
            x_index = torch.arange(len(x)).repeat(repeats)
            partner = (x_labels[x_index] + offset) % 10
            y_index = partner * n + torch.randint(0, n, (len(x_index),), generator=generator)
            self.splits[split] = IndexedPairs(x, y, x_labels, y_labels, x_index, y_index, transform=to_unit_range)

    def split(self, name: str) -> IndexedPairs:
        return self.splits[name]

    def describe(self) -> dict[str, Any]:
        return {
            "name": "fake-digits",
            "offset": self.offset,
            "x_source": f"templates seed {self.seed}",
            "y_source": "t",
        }


class PlainPairs(torch.utils.data.Dataset[Pair]):
    """A split without banks or ``__getitems__``: the classifiers must read it item by item."""

    def __init__(self, split: IndexedPairs) -> None:
        self.inner = split

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> Pair:
        return self.inner[index]


class PlainDigits(FakeDigits):
    def split(self, name: str) -> PlainPairs:  # type: ignore[override]
        return PlainPairs(self.splits[name])


class PerfectModel(nn.Module):
    """Returns real test pairs: x_to_y gives the y paired with x in the test split, joint a random test pair."""

    def __init__(self, data: DatasetProvider) -> None:
        super().__init__()
        self.latent = {"z": 1, "u": 1, "v": 1}
        test = data.split("test")
        batch = test.__getitems__(list(range(len(test))))
        self.xs, self.ys = batch["x"], batch["y"]

    def _find(self, bank: Tensor, items: Tensor) -> Tensor:
        return torch.cdist(items.flatten(1), bank.flatten(1)).argmin(dim=1)

    def joint(self, n: int, generator: torch.Generator | None = None) -> Sample:
        k = torch.randint(0, len(self.xs), (n,), generator=generator)
        return Sample(x=self.xs[k], y=self.ys[k])

    def x_to_y(self, x: Tensor, generator: torch.Generator | None = None) -> Sample:
        return Sample(x=x, y=self.ys[self._find(self.xs, x)])

    def y_to_x(self, y: Tensor, generator: torch.Generator | None = None) -> Sample:
        return Sample(x=self.xs[self._find(self.ys, y)], y=y)


@dataclass
class Run:
    """An ``EvalContext``."""

    model: BimodalModel | Any
    data: DatasetProvider
    figures_dir: Path = Path("figures")
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0


def tiny_wyner(host: PluginHost) -> BimodalModel:
    """An untrained variational Wyner model of the fake digits' shapes (small MLP image networks)."""
    image = {"name": "image", "height": SIDE, "preset": "mlp", "features": 16}
    spec = {"x": {**image, "channels": 1}, "y": {**image, "channels": 3}, "latent": {"z": 4, "u": 2, "v": 2}}
    return check_component(host, "model", "variational-wyner", spec)
