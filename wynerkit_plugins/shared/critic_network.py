"""The critic network the built-in estimators share; each estimator plugin adds only its loss.

Design, as in the authors' code: one feature map over the pair (x, y) is shared by every head;
each head embeds its latent part with a (spectrally normalised) linear layer followed by
LeakyReLU, concatenates it with the pair features and maps through one hidden layer to one
number per item, the log-ratio estimate. Gaussian instance noise is added to every input the
critic reads, which smooths both distributions so their ratio stays finite: the heads then
estimate divergences between the smoothed distributions (p * N(0, s^2 I) against q * N(0, s^2 I)).

Keeping the network in one place means estimators that differ in their loss (``adversarial-js``,
``nwj``) are compared on the same function class: a difference in their estimates is the loss's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveInt
from torch import Tensor, nn

from wynerkit import BuildContext, ComponentParams, Modality, Sample
from wynerkit.sample import VARIABLES, Variable

LATENTS: tuple[Variable, ...] = ("z", "u", "v")
LEAKY_SLOPE = 0.2


class CriticParams(ComponentParams):
    """Sizes of the critic networks and the instance noise."""

    hidden: PositiveInt = Field(512, description="size of the shared (x, y) features and of each head's hidden layer")
    embed: PositiveInt = Field(512, description="size of each head's embedding of its latent variables")
    instance_noise: NonNegativeFloat = Field(
        0.25, allow_inf_nan=False, description="std of the Gaussian noise added to every critic input"
    )
    spectral_norm: bool = Field(True, description="spectrally normalise the latent embeddings")
    interaction: NonNegativeInt = Field(
        0,
        description="rank of a multiplicative x-y interaction in the shared pair features, (P h_x) * (Q h_y) "
        "appended to them; 0 (the authors' design here): x and y features meet only additively, and a critic "
        "struggles to see which y pairs with which x",
    )


class Head(nn.Module):
    """One critic head: embed the latent part, join the pair features, one hidden layer, one output."""

    def __init__(self, latent_size: int, pair_size: int, params: CriticParams) -> None:
        super().__init__()
        self.embedding = None
        if latent_size:
            self.embedding = nn.Linear(latent_size, params.embed)
            if params.spectral_norm:
                self.embedding = nn.utils.parametrizations.spectral_norm(self.embedding)
        joined = pair_size + (params.embed if latent_size else 0)
        self.body = nn.Sequential(
            nn.Linear(joined, params.hidden), nn.LeakyReLU(LEAKY_SLOPE), nn.Linear(params.hidden, 1)
        )

    def forward(self, pair: Tensor | None, latent: Tensor | None) -> Tensor:
        parts = [] if pair is None else [pair]
        if self.embedding is not None:
            parts.append(F.leaky_relu(self.embedding(latent), LEAKY_SLOPE))
        return self.body(torch.cat(parts, dim=1)).squeeze(1)


class Interaction(nn.Module):
    """A rank-r multiplicative interaction of the two trunks' features: (P h_x) * (Q h_y), elementwise.

    An additive layer over [h_x, h_y] scores x and y nearly separately; a product lets a head score
    whether this y belongs with this x (the pairing), not only whether each looks real.
    """

    def __init__(self, x_features: int, y_features: int, rank: int) -> None:
        super().__init__()
        self.p, self.q = nn.Linear(x_features, rank), nn.Linear(y_features, rank)

    def forward(self, h_x: Tensor, h_y: Tensor) -> Tensor:
        return self.p(h_x) * self.q(h_y)


class CriticNetwork(nn.Module, ABC):
    """Critic heads sharing one (x, y) feature map; a subclass supplies ``critic_loss``.

    Subclasses implement ``wynerkit.RatioEstimator``: everything but the loss is here.
    """

    component: ClassVar[str]
    """The registered name, for error messages."""

    def __init__(
        self,
        x: Modality,
        y: Modality,
        latent: Mapping[str, int],
        heads: Mapping[str, Sequence[str]],
        params: CriticParams,
    ) -> None:
        super().__init__()
        self.params = params
        if not heads:
            raise ValueError(f"{self.component} needs at least one head")
        self.heads: dict[str, tuple[Variable, ...]] = {
            name: check_head(name, variables, latent) for name, variables in heads.items()
        }
        self.instance_noise = params.instance_noise
        self.pair = None
        self.interaction = None
        if any("x" in variables for variables in self.heads.values()):
            self.x_trunk, self.y_trunk = x.critic_trunk(), y.critic_trunk()
            self.pair = nn.Sequential(
                nn.Linear(self.x_trunk.out_features + self.y_trunk.out_features, params.hidden),
                nn.LeakyReLU(LEAKY_SLOPE),
            )
            if params.interaction:
                self.interaction = Interaction(self.x_trunk.out_features, self.y_trunk.out_features, params.interaction)
        pair_size = params.hidden + params.interaction
        self.head_nets = nn.ModuleDict(
            {
                name: Head(
                    sum(latent[v] for v in variables if v in LATENTS),
                    pair_size if "x" in variables else 0,
                    params,
                )
                for name, variables in self.heads.items()
            }
        )

    def noisy(self, t: Tensor) -> Tensor:
        """An input with instance noise added: the critic never reads an input without it.

        The noise is drawn in logical (not memory) order, so a channels-last batch gets the same draws.
        """
        if not self.instance_noise:
            return t
        return t + self.instance_noise * torch.randn(t.shape, dtype=t.dtype, device=t.device)

    def features(self, sample: Sample) -> Tensor | None:
        """The shared features of (x, y); compute once per batch and pass to every head on it.

        None when no head reads (x, y), or the sample holds neither (a latent-only head's sample):
        a head that needs features then computes them itself, and says what the sample lacks.
        """
        if self.pair is None or (sample.x is None and sample.y is None):
            return None
        x, y = sample.require("x", "y")
        h_x, h_y = self.x_trunk(self.noisy(x)), self.y_trunk(self.noisy(y))
        joined = self.pair(torch.cat([h_x, h_y], dim=1))
        if self.interaction is None:
            return joined
        return torch.cat([joined, self.interaction(h_x, h_y)], dim=1)

    def log_ratio(self, head: str, sample: Sample, features: Tensor | None = None) -> Tensor:
        """The output of ``head``, an estimate of log p/q per item, shape [B].

        ``features`` are precomputed ``features`` of the same (x, y) (ignored by latent-only heads).
        """
        variables = self._variables(head)
        pair = None
        if "x" in variables:
            pair = self.features(sample) if features is None else features
        latents = [v for v in variables if v in LATENTS]
        latent = torch.cat([self.noisy(t) for t in sample.require(*latents)], dim=1) if latents else None
        return self.head_nets[head](pair, latent)

    @abstractmethod
    def critic_loss(self, log_ratio_p: Tensor, log_ratio_q: Tensor) -> Tensor:
        """Scalar loss on one head's log-ratios for samples of p and of q; minimised at log p/q."""

    def _variables(self, head: str) -> tuple[Variable, ...]:
        if head not in self.heads:
            raise ValueError(f"unknown critic head {head!r}; this estimator has: {', '.join(self.heads)}")
        return self.heads[head]


def check_head(name: str, variables: Sequence[str], latent: Mapping[str, int]) -> tuple[Variable, ...]:
    """The head's variables in canonical order (x, y, z, u, v), or a ValueError saying what is wrong."""
    unknown = sorted(set(variables) - set(VARIABLES))
    if unknown:
        raise ValueError(f"head {name!r}: unknown variable(s) {unknown}; use some of {list(VARIABLES)}")
    if not variables:
        raise ValueError(f"head {name!r} reads no variable")
    if ("x" in variables) != ("y" in variables):
        raise ValueError(f"head {name!r} reads {list(variables)}: a head reads both x and y, or neither")
    unsized = [v for v in LATENTS if v in variables and not latent.get(v)]
    if unsized:
        raise ValueError(f"head {name!r}: no size for latent(s) {unsized}; sizes given: {dict(latent)}")
    return tuple(v for v in VARIABLES if v in variables)


def critic_factory(network: type[CriticNetwork], summary: str) -> Callable[..., CriticNetwork]:
    """The registered factory of an estimator built on ``CriticNetwork``; ``summary`` is its docstring."""

    def make(
        params: CriticParams,
        context: BuildContext,
        *,
        x: Modality,
        y: Modality,
        latent: Mapping[str, int],
        heads: Mapping[str, Sequence[str]],
    ) -> CriticNetwork:
        return network(x, y, latent, heads, params).to(context.device)

    make.__doc__ = summary
    return make
