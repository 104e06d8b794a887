"""The typed interfaces every part of a bimodal model implements.

The core programs against these Protocols only; concrete datasets, networks, estimators, models
and evaluators live in plugins. They are structural (`typing.Protocol`): a plugin need not
inherit from anything, it only has to provide these attributes and methods.
`wynerkit.testing` checks a component against its interface.

Optional capabilities (a split's ``set_epoch`` or ``gallery()``, a model's ``reusing_features()``,
...) are Protocols too: the core and the built-ins ask ``isinstance(split, EpochSplit)``, never
``hasattr``, so everything a component may be asked for is declared here and in docs/plugins.md.
This module is longer than most on purpose: it is the whole contract a plugin author reads.

Conventions shared by all interfaces:
- a batch's leading dimension is the batch; per-item losses have shape ``[B]``;
- modalities declare their value range (images use [-1, 1]);
- randomness comes from an explicit ``torch.Generator`` wherever a method draws from a prior,
  so that the same spec and seed give the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, TypedDict, runtime_checkable

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
        """JSON-able facts for the run summary: sizes, sources, whether data is a stand-in (``DatasetFacts``)."""
        ...


class DatasetFacts(TypedDict, total=False):
    """The keys of ``describe()`` that wynerkit and the built-in evaluators read; a dataset adds any others.

    Every key is optional; an evaluator that needs one says so in its error. ``wynerkit.testing``
    checks the types of those a dataset gives.
    """

    name: str
    """The dataset's name: cache keys and error messages (the ``probe``, ``coherence``, ``fd`` evaluators)."""
    pairing: str
    """How x and y are paired; starting with "instance", retrieval's ``auto`` mode ranks by the true match."""
    offset: int | float
    """Digit datasets: an int, y's label is (x's label + offset) mod 10 (``coherence`` and ``fd`` read it)."""
    x_source: str
    """What the x items are made from (part of the ``coherence`` / ``fd`` classifier cache key); y_source alike."""
    y_source: str
    stand_in: bool
    """True when the data is a stand-in for the paper's (e.g. SynDigits for SVHN)."""


# -- optional capabilities --------------------------------------------------------------------------
# What the trainer, evaluators and commands use when a split, provider or model offers it. Each is
# checked with ``isinstance`` (never by probing names), documented in docs/plugins.md and exercised by
# ``wynerkit.testing`` when a component has it.


@runtime_checkable
class BatchedSplit(Protocol):
    """A split that fetches a whole batch at once (torch's DataLoader calls it too)."""

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        """One batched ``Pair``: ``x`` ``[B, *x_shape]``, ``y`` ``[B, *y_shape]``, int64 labels ``[B]``."""
        ...


@runtime_checkable
class EpochSplit(Protocol):
    """A split whose pairs depend on the epoch (e.g. Sketchy redraws each sketch's photo)."""

    def set_epoch(self, epoch: int) -> None:
        """Draw the pairs of ``epoch``; the trainer calls it before every epoch, a resumed one included."""
        ...


@runtime_checkable
class EpochBatchSampler(Protocol):
    """The batches of one epoch, as a ``SampledSplit`` gives them."""

    def set_epoch(self, epoch: int) -> None: ...

    def __iter__(self) -> Iterator[list[int]]: ...


@runtime_checkable
class SampledSplit(Protocol):
    """A split that chooses its own training batches (e.g. class-balanced ones)."""

    def batch_sampler(self, batch_size: int, *, drop_last: bool = False) -> EpochBatchSampler: ...


@runtime_checkable
class IndexedSplit(Protocol):
    """A split whose item k pairs row ``x_index[k]`` of an x bank with row ``y_index[k]`` of a y bank.

    Retrieval ranks distinct rows: items sharing an x row are one query, items sharing a y row one
    gallery item. A split without it is read item by item (item k is query k and gallery item k).
    """

    x_index: Tensor
    y_index: Tensor


@runtime_checkable
class BankedSplit(IndexedSplit, Protocol):
    """An ``IndexedSplit`` that also exposes its banks: the evaluators read unique rows without fetching pairs."""

    x: Tensor
    y: Tensor
    x_labels: Tensor
    y_labels: Tensor

    def transform(self, rows: Tensor) -> Tensor:
        """Bank rows as items (e.g. uint8 pixels to floats in [-1, 1])."""
        ...


@runtime_checkable
class GallerySplit(Protocol):
    """A test split with a gallery of its own: category retrieval ranks all of it, not only the paired y items."""

    def gallery(self) -> tuple[Tensor, Tensor]:
        """The gallery's y items ``[M, *y_shape]`` and their class labels ``[M]``."""
        ...


@runtime_checkable
class QueryReader(Protocol):
    """A dataset provider that turns a query file into x items the way it makes its own."""

    def read_x(self, path: Path) -> Tensor:
        """x items ``[N, *x_shape]`` read from an image file; ``ValueError`` when the file does not fit."""
        ...


@runtime_checkable
class FeatureReuse(Protocol):
    """A model that can reuse trunk features of a data tensor it encodes more than once."""

    def reusing_features(self) -> AbstractContextManager[object]:
        """Inside, encoding the same tensor again reuses its features (graph included); outputs are unchanged."""
        ...


SPLIT_CAPABILITIES: tuple[type, ...] = (BatchedSplit, EpochSplit, SampledSplit, IndexedSplit, BankedSplit, GallerySplit)
"""Every optional capability of a split, in the order docs/plugins.md lists them."""


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

    An estimator is a network that maps a sample to a per-item log-ratio estimate, plus the loss
    that trains it: minimising ``critic_loss(log_ratio(h, p), log_ratio(h, q))`` over the critic
    makes ``log_ratio(h, .)`` approach ``log p/q``. Divergences follow from the log-ratios alone
    (symmetric KL = mean on p minus mean on q; mutual information = mean on the joint tuples), so
    objective terms work with any estimator.
    """

    heads: Mapping[str, tuple[Variable, ...]]
    """Head name -> the variables the head reads, e.g. ``("x", "y", "z", "u", "v")``."""

    def features(self, sample: Sample) -> Tensor | None:
        """Features of (x, y) shared by every head that reads data; None when no head reads x, y.

        Callers compute them once per batch and pass them to ``log_ratio`` for each head.
        """
        ...

    def log_ratio(self, head: str, sample: Sample, features: Tensor | None = None) -> Tensor:
        """Estimated ``log p/q`` per item, shape ``[B]``; ``features`` from ``features(sample)``."""
        ...

    def critic_loss(self, log_ratio_p: Tensor, log_ratio_q: Tensor) -> Tensor:
        """Scalar loss on one head's log-ratios for samples of p and of q; minimised at log p/q."""
        ...

    def parameters(self) -> Iterator[nn.Parameter]: ...


@runtime_checkable
class BimodalModel(Protocol):
    """A generative model of (x, y) exposing the paper's four induced distributions."""

    latent: Mapping[str, int]
    """Sizes of the latent variables, e.g. ``{"z": 16, "u": 8, "v": 8}``."""
    x_modality: Modality
    y_modality: Modality

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

    def encode_u(self, z: Tensor, x: Tensor) -> Tensor:
        """The local code of x given a common code, q(u|z,x) (style extraction)."""
        ...

    def encode_v(self, z: Tensor, y: Tensor) -> Tensor:
        """The local code of y given a common code, q(v|z,y)."""
        ...

    def decode(self, z: Tensor, u: Tensor | None = None, v: Tensor | None = None) -> Sample:
        """Decode x from (z, u) and/or y from (z, v); returns a Sample with z, u, v and outputs."""
        ...

    def parameters(self) -> Iterator[nn.Parameter]: ...


@runtime_checkable
class StepContext(Protocol):
    """What an objective term sees during one training step.

    Each distribution is sampled at most once per step and shared by every term that uses it; the
    shared critic features of each sampled (x, y) batch are computed once per phase. In the critic
    phase (``critic_phase`` true) samples are detached: the critic trains on fixed samples.
    """

    model: BimodalModel
    estimator: RatioEstimator | None
    batch: Sample
    """The data minibatch (x, y) of this step."""
    critic_phase: bool

    def sample(self, distribution: Distribution) -> Sample: ...

    def log_ratio(
        self, head: str, distribution: Distribution, *, shuffle_z: bool = False, detach_features: bool = False
    ) -> Tensor:
        """The estimator's log-ratio of ``head`` on one distribution's sample.

        ``shuffle_z`` permutes z within the batch (the product of marginals); ``detach_features``
        keeps this head from training the shared (x, y) features (the authors' CI heads).
        """
        ...

    def reconstruct(self, modality: Literal["x", "y"], distribution: Distribution) -> Tensor:
        """Decode one modality from the (z, u) or (z, v) a distribution's sample holds (cached)."""
        ...


class CriticLoss(NamedTuple):
    """What an objective term's critic side returns: the loss and the heads' accuracy (for logging)."""

    loss: Tensor
    accuracy: Tensor


@runtime_checkable
class ObjectiveTerm(Protocol):
    """One weighted term of the training objective (D_joint, I_x2y, R_x2y, ...)."""

    critic_heads: Mapping[str, tuple[Variable, ...]]
    """The estimator heads this term reads (empty for terms without a critic)."""
    multiplier: Literal["lambda_ci", "lambda_rec"] | None
    """The objective-wide weight that scales this term besides its own (I terms: ``lambda_ci``)."""

    def generator_loss(self, step: StepContext) -> Tensor:
        """The scalar this term adds (unweighted) to the generator's loss."""
        ...

    def critic_loss(self, step: StepContext) -> CriticLoss | None:
        """The scalar the critic minimises for this term's heads, and their accuracy (None: no critic)."""
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
    "SPLIT_CAPABILITIES",
    "BankedSplit",
    "BatchedSplit",
    "BimodalModel",
    "CriticLoss",
    "DatasetFacts",
    "DatasetProvider",
    "Distribution",
    "EpochBatchSampler",
    "EpochSplit",
    "EvalContext",
    "Evaluator",
    "FeatureNet",
    "FeatureReuse",
    "GallerySplit",
    "IndexedSplit",
    "Modality",
    "ObjectiveTerm",
    "Pair",
    "QueryReader",
    "RatioEstimator",
    "SampledSplit",
    "Sample",
    "Split",
    "StepContext",
]
