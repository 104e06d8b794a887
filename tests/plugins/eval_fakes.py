"""Test doubles for the probe and reconstruction evaluators: labelled vector pairs and transparent models.

``VectorPairs`` holds given x, y tensors and labels per split. ``CodeModel`` is a ``BimodalModel``
whose codes are functions the test chooses: ``encode_z`` reads the first ``z_dim`` features of x
(or of y), local codes are zero, and decoders return ``z + offset`` — so a test knows exactly what
every encoder and decoder gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from wynerkit import Pair, Sample
from wynerkit.data.batching import stack_pairs
from wynerkit.evaluation.evaluate import Origin, RunEvalContext, evaluate_model
from wynerkit.plugins import PluginHost
from wynerkit.spec.models import SpecBuilder
from wynerkit_plugins.modalities.vector import VectorModality, VectorParams


class PairSplit(torch.utils.data.Dataset[Pair]):
    def __init__(self, x: Tensor, y: Tensor, x_label: Tensor, y_label: Tensor) -> None:
        self.x, self.y, self.x_label, self.y_label = x, y, x_label, y_label

    def __len__(self) -> int:
        return len(self.x)

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        i = torch.as_tensor(indices, dtype=torch.long)
        return stack_pairs(self.x[i], self.y[i], self.x_label[i], self.y_label[i])

    def __getitem__(self, index: int) -> Pair:
        return {
            "x": self.x[index],
            "y": self.y[index],
            "x_label": int(self.x_label[index]),
            "y_label": int(self.y_label[index]),
        }


class VectorPairs:
    """A ``DatasetProvider`` over given splits: ``splits[name] = (x, y, x_label, y_label)``."""

    def __init__(self, name: str, splits: dict[str, tuple[Tensor, Tensor, Tensor, Tensor]]) -> None:
        self.name = name
        self.splits = {split: PairSplit(*tensors) for split, tensors in splits.items()}
        first = next(iter(self.splits.values()))
        self.x_shape, self.y_shape = tuple(first.x.shape[1:]), tuple(first.y.shape[1:])

    def split(self, name: str) -> PairSplit:
        return self.splits[name]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


def labelled_pairs(
    n: dict[str, int], classes: int = 10, noise_dims: int = 2, offset: int = 1, seed: int = 0, name: str = "fake-labels"
) -> VectorPairs:
    """x = [one-hot(label), noise], y = [one-hot((label + offset) mod classes), noise]."""
    generator = torch.Generator().manual_seed(seed)
    splits = {}
    for split, size in n.items():
        label = torch.randint(0, classes, (size,), generator=generator)
        partner = (label + offset) % classes
        x = torch.cat(
            [nn.functional.one_hot(label, classes).float(), torch.randn(size, noise_dims, generator=generator)], 1
        )
        y = torch.cat(
            [nn.functional.one_hot(partner, classes).float(), torch.randn(size, noise_dims, generator=generator)], 1
        )
        splits[split] = (x, y, label, partner)
    return VectorPairs(name, splits)


class CodeModel(nn.Module):
    """z = ``code(first z_dim features)`` of x (or y); u = v = 0; x(z, u) = z + x_offset, y(z, v) = z + y_offset."""

    def __init__(
        self,
        dim: int,
        z_dim: int,
        *,
        code: Callable[[Tensor], Tensor] = lambda features: features,
        x_offset: float = 0.0,
        y_offset: float = 0.0,
        loss: str = "l2",
    ) -> None:
        super().__init__()
        self.latent = {"z": z_dim, "u": 1, "v": 1}
        self.x_modality = VectorModality(VectorParams(dim=dim, loss=loss))
        self.y_modality = VectorModality(VectorParams(dim=dim, loss=loss))
        self.code, self.x_offset, self.y_offset = code, x_offset, y_offset
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the model a device and dtype

    def encode_z(self, x: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        source = x if x is not None else y
        return self.code(source[:, : self.latent["z"]])

    def encode_u(self, z: Tensor, x: Tensor) -> Tensor:
        return torch.zeros(len(x), 1)

    def encode_v(self, z: Tensor, y: Tensor) -> Tensor:
        return torch.zeros(len(y), 1)

    def decode(self, z: Tensor, u: Tensor | None = None, v: Tensor | None = None) -> Sample:
        x = None if u is None else z + self.x_offset
        y = None if v is None else z + self.y_offset
        return Sample(x=x, y=y, z=z, u=u, v=v)

    def variational(self, x: Tensor, y: Tensor) -> Sample:
        z = self.encode_z(x, y)
        return Sample(x=x, y=y, z=z, u=self.encode_u(z, x), v=self.encode_v(z, y))

    def joint(self, n: int, generator: torch.Generator | None = None) -> Sample:
        z = torch.randn(n, self.latent["z"], generator=generator)
        return self.decode(z, torch.zeros(n, 1), torch.zeros(n, 1))

    def x_to_y(self, x: Tensor, generator: torch.Generator | None = None) -> Sample:
        z = self.encode_z(x=x)
        return self.decode(z, v=torch.randn(len(x), 1, generator=generator)).with_(x=x, u=self.encode_u(z, x))

    def y_to_x(self, y: Tensor, generator: torch.Generator | None = None) -> Sample:
        z = self.encode_z(y=y)
        return self.decode(z, u=torch.randn(len(y), 1, generator=generator)).with_(y=y, v=self.encode_v(z, y))


def evaluate(host: PluginHost, name: str, model: nn.Module, data: Any, run_dir: Any, **params: Any) -> dict[str, float]:
    """Run one registered evaluator through the core (no_grad, seeded), as ``wynerkit eval`` does."""
    spec = (
        SpecBuilder(host.registry)
        .variant(host.registry.get("evaluator", name))
        .model_validate({"name": name, **params})
    )
    context = RunEvalContext(
        model=model, data=data, figures_dir=run_dir / "figures", device=torch.device("cpu"), seed=0
    )
    return evaluate_model(run_dir, context, host.registry, [spec], Origin("latest", 0))
