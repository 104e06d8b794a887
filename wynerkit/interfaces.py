"""The typed interfaces every part of a bimodal model implements.

The core programs against these Protocols only; concrete datasets, networks, estimators, models
and evaluators live in plugins. They are structural (`typing.Protocol`): a plugin need not
inherit from anything, it only has to provide these attributes and methods.
`wynerkit.testing` checks a component against its interface.

Conventions shared by all interfaces:
- a batch's leading dimension is the batch; per-item losses have shape ``[B]``;
- modalities declare their value range (images use [-1, 1]);
- randomness comes from an explicit ``torch.Generator`` wherever a method draws from a prior,
  so that the same spec and seed give the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from wynerkit.datafiles import DataSource
from wynerkit.sample import Sample, Variable

Split = Literal["train", "valid", "test"]
Distribution = Literal["variational", "joint", "x2y", "y2x"]
"""The four induced distributions of the paper's Table 1: q_xy->, p->xy, p_x->y, p_y->x."""


class Pair(TypedDict):
    """One paired item as a dataset yields it. Labels are -1 where a dataset has none."""

    x: Tensor
    y: Tensor
    x_label: int
    y_label: int


@runtime_checkable
class DatasetProvider(Protocol):
    """A source of paired data (x, y) with disjoint train / valid / test splits."""

    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]

    def split(self, name: Split) -> torch.utils.data.Dataset[Pair]:
        """The items of one split; splits never share an item."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-able facts for the run summary: sizes, sources, and whether data is a stand-in."""
        ...


@runtime_checkable
class FeatureNet(Protocol):
    """A network mapping a batch of one modality to flat features ``[B, out_features]``."""

    out_features: int

    def __call__(self, batch: Tensor) -> Tensor: ...

    def parameters(self) -> Iterator[nn.Parameter]: ...


@runtime_checkable
class Modality(Protocol):
    """One kind of data (an image size, a feature vector): its networks, loss and pictures."""

    shape: tuple[int, ...]
    value_range: tuple[float, float]

    def encoder_trunk(self) -> FeatureNet:
        """A fresh feature extractor for encoders."""
        ...

    def critic_trunk(self) -> FeatureNet:
        """A fresh feature extractor for density-ratio critics."""
        ...

    def decoder(self, in_features: int) -> nn.Module:
        """A fresh network mapping ``[B, in_features]`` to a batch of this modality."""
        ...

    def reconstruction_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Per-item reconstruction loss, shape ``[B]``."""
        ...

    def to_grid(self, batch: Tensor, nrow: int) -> np.ndarray:
        """A picture of a batch: uint8 array ``[H, W, 3]`` with ``nrow`` items per row."""
        ...


@runtime_checkable
class RatioEstimator(Protocol):
    """Density-ratio critics, one head per compared pair of distributions.

    A head named ``h`` is trained by ``critic_loss(h, p, q)`` to tell samples of p (positive)
    from samples of q; its ``log_ratio`` then estimates ``log p/q`` pointwise.
    """

    heads: Mapping[str, tuple[Variable, ...]]
    """Head name -> the variables the head reads, e.g. ``("x", "y", "z", "u", "v")``."""

    def log_ratio(self, head: str, sample: Sample) -> Tensor:
        """Estimated ``log p/q`` per item, shape ``[B]``."""
        ...

    def critic_loss(self, head: str, p: Sample, q: Sample) -> Tensor:
        """Scalar loss the critic minimises to separate p from q."""
        ...

    def sym_kl(self, head: str, p: Sample, q: Sample) -> Tensor:
        """Estimate of ``KL(p||q) + KL(q||p)`` as mean log-ratio on p minus mean on q."""
        ...

    def mutual_information(self, head: str, sample: Sample) -> Tensor:
        """Estimate of ``I((x, y); z)`` under the distribution that produced ``sample``.

        The head compares the tuples against the same batch with z shuffled.
        """
        ...

    def parameters(self) -> Iterator[nn.Parameter]: ...


@runtime_checkable
class BimodalModel(Protocol):
    """A generative model of (x, y) exposing the paper's four induced distributions."""

    latent: Mapping[str, int]
    """Sizes of the latent variables, e.g. ``{"z": 16, "u": 8, "v": 8}``."""

    def variational(self, x: Tensor, y: Tensor) -> Sample:
        """q_xy->: data (x, y) with z ~ q(z|x,y), u ~ q(u|z,x), v ~ q(v|z,y)."""
        ...

    def joint(self, n: int, generator: torch.Generator | None = None) -> Sample:
        """p->xy: z, u, v from the priors, x = x(z,u), y = y(z,v)."""
        ...

    def x_to_y(self, x: Tensor, generator: torch.Generator | None = None) -> Sample:
        """p_x->y: x from data, z ~ q(z|x), v from the prior, y = y(z,v), u ~ q(u|z,x)."""
        ...

    def y_to_x(self, y: Tensor, generator: torch.Generator | None = None) -> Sample:
        """p_y->x: y from data, z ~ q(z|y), u from the prior, x = x(z,u), v ~ q(v|z,y)."""
        ...

    def encode_z(self, x: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        """The common code from x, from y, or from both (q(z|x), q(z|y), q(z|x,y))."""
        ...

    def decode(self, z: Tensor, u: Tensor | None = None, v: Tensor | None = None) -> Sample:
        """Decode x from (z, u) and/or y from (z, v); returns a Sample with z, u, v and outputs."""
        ...

    def parameters(self) -> Iterator[nn.Parameter]: ...


@runtime_checkable
class StepContext(Protocol):
    """What an objective term sees during one training step.

    Each distribution is sampled at most once per step and shared by every term that uses it.
    """

    model: BimodalModel
    estimator: RatioEstimator | None

    def sample(self, distribution: Distribution) -> Sample: ...


@runtime_checkable
class ObjectiveTerm(Protocol):
    """One weighted term of the training objective (D_joint, I_x2y, R_x2y, ...)."""

    critic_heads: Mapping[str, tuple[Variable, ...]]
    """The estimator heads this term reads (empty for terms without a critic)."""

    def generator_loss(self, step: StepContext) -> Tensor:
        """The scalar this term adds (unweighted) to the generator's loss."""
        ...

    def critic_loss(self, step: StepContext) -> Tensor:
        """The scalar the critic minimises for this term's heads (zero when it has none)."""
        ...


@runtime_checkable
class Evaluator(Protocol):
    """Measures a trained model and returns fixed, documented keys for ``summary.json``."""

    def evaluate(self, run: EvalContext) -> dict[str, float]: ...


@runtime_checkable
class EvalContext(Protocol):
    """What an evaluator sees: the trained (EMA) model, the data, and where to write figures."""

    model: BimodalModel
    data: DatasetProvider
    figures_dir: Path
    device: torch.device
    seed: int


KINDS: tuple[str, ...] = (
    "dataset",
    "modality",
    "estimator",
    "objective_term",
    "model",
    "evaluator",
    "data_source",
)
"""Every kind of component a plugin can register, in the order the CLI lists them.

``data_source`` components are not named in specs: they describe the files under the data root
that ``wynerkit data info|verify|download`` manage.
"""

INTERFACE_OF: Mapping[str, type] = {
    "dataset": DatasetProvider,
    "modality": Modality,
    "estimator": RatioEstimator,
    "objective_term": ObjectiveTerm,
    "model": BimodalModel,
    "evaluator": Evaluator,
    "data_source": DataSource,
}

__all__ = [
    "KINDS",
    "INTERFACE_OF",
    "BimodalModel",
    "DatasetProvider",
    "Distribution",
    "EvalContext",
    "Evaluator",
    "FeatureNet",
    "Modality",
    "ObjectiveTerm",
    "Pair",
    "RatioEstimator",
    "Sample",
    "Split",
    "StepContext",
]
