"""Adversarial density-ratio estimation with the logistic (Jensen-Shannon) loss: ``adversarial-js``.

A critic head T trained to tell samples of p (label 1) from samples of q (label 0) with the
logistic loss is optimal at T = log p/q (the variational form of the Jensen-Shannon divergence).
Its logits then estimate the symmetric KL as E_p[T] - E_q[T] and, for p(x,y,z) against
p(x,y)p(z), the mutual information I(X,Y;Z) as E_p[T] (method notes, "Critic design").

Design, as in the authors' code: one feature map over the pair (x, y) is shared by every head;
each head embeds its latent part with a (spectrally normalised) linear layer followed by
LeakyReLU, concatenates it with the pair features and maps through one hidden layer to a logit.
Gaussian instance noise is added to every input the critic reads, which smooths both
distributions so their ratio stays finite: the heads then estimate divergences between the
smoothed distributions (p * N(0, s^2 I) against q * N(0, s^2 I)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveInt
from torch import Tensor, nn

from wynerkit import BuildContext, ComponentParams, Modality, Sample, hookimpl
from wynerkit.hookspecs import Register
from wynerkit.sample import VARIABLES, Variable

LATENTS: tuple[Variable, ...] = ("z", "u", "v")
LEAKY_SLOPE = 0.2


class AdversarialJSParams(ComponentParams):
    """Sizes of the critic networks and the instance noise."""

    hidden: PositiveInt = Field(512, description="size of the shared (x, y) features and of each head's hidden layer")
    embed: PositiveInt = Field(512, description="size of each head's embedding of its latent variables")
    instance_noise: NonNegativeFloat = Field(
        0.25, allow_inf_nan=False, description="std of the Gaussian noise added to every critic input"
    )
    spectral_norm: bool = Field(True, description="spectrally normalise the latent embeddings")


def logistic_loss(t_p: Tensor, t_q: Tensor) -> Tensor:
    """Binary cross-entropy on logits with p positive; minimised by T = log p/q."""
    return F.softplus(-t_p).mean() + F.softplus(t_q).mean()


class Head(nn.Module):
    """One critic head: embed the latent part, join the pair features, one hidden layer, a logit."""

    def __init__(self, latent_size: int, pair_size: int, params: AdversarialJSParams) -> None:
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


class AdversarialJS(nn.Module):
    """Critic heads sharing one (x, y) feature map; implements ``wynerkit.RatioEstimator``."""

    def __init__(
        self,
        x: Modality,
        y: Modality,
        latent: Mapping[str, int],
        heads: Mapping[str, Sequence[str]],
        params: AdversarialJSParams,
    ) -> None:
        super().__init__()
        if not heads:
            raise ValueError("adversarial-js needs at least one head")
        self.heads: dict[str, tuple[Variable, ...]] = {
            name: _check_head(name, variables, latent) for name, variables in heads.items()
        }
        self.instance_noise = params.instance_noise
        self.pair = None
        if any("x" in variables for variables in self.heads.values()):
            self.x_trunk, self.y_trunk = x.critic_trunk(), y.critic_trunk()
            self.pair = nn.Sequential(
                nn.Linear(self.x_trunk.out_features + self.y_trunk.out_features, params.hidden),
                nn.LeakyReLU(LEAKY_SLOPE),
            )
        self.head_nets = nn.ModuleDict(
            {
                name: Head(
                    sum(latent[v] for v in variables if v in LATENTS),
                    params.hidden if "x" in variables else 0,
                    params,
                )
                for name, variables in self.heads.items()
            }
        )

    def noisy(self, t: Tensor) -> Tensor:
        """An input with instance noise added: the critic never reads an input without it."""
        return t + self.instance_noise * torch.randn_like(t) if self.instance_noise else t

    def pair_features(self, sample: Sample) -> Tensor:
        """The shared features of (x, y); compute once and pass to several heads on one batch."""
        if self.pair is None:
            raise ValueError("no head of this estimator reads (x, y)")
        x, y = sample.require("x", "y")
        return self.pair(torch.cat([self.x_trunk(self.noisy(x)), self.y_trunk(self.noisy(y))], dim=1))

    def log_ratio(self, head: str, sample: Sample, features: Tensor | None = None) -> Tensor:
        """The logit T of ``head``, an estimate of log p/q per item, shape [B].

        ``features`` are precomputed ``pair_features`` of the same (x, y) (ignored by latent-only heads).
        """
        variables = self._variables(head)
        pair = None
        if "x" in variables:
            pair = self.pair_features(sample) if features is None else features
        latents = [v for v in variables if v in LATENTS]
        latent = torch.cat([self.noisy(t) for t in sample.require(*latents)], dim=1) if latents else None
        return self.head_nets[head](pair, latent)

    def critic_loss(self, head: str, p: Sample, q: Sample) -> Tensor:
        """Logistic loss with p as the positive class; minimised by T = log p/q."""
        return logistic_loss(self.log_ratio(head, p), self.log_ratio(head, q))

    def sym_kl(self, head: str, p: Sample, q: Sample) -> Tensor:
        """KL(p||q) + KL(q||p) estimated as E_p[T] - E_q[T] (exact when T = log p/q)."""
        return self.log_ratio(head, p).mean() - self.log_ratio(head, q).mean()

    def mutual_information(self, head: str, sample: Sample) -> Tensor:
        """I((x, y); z) as E[T] over the joint tuples, for a head trained by ``mi_critic_loss``.

        With T = log p(x,y,z) / (p(x,y) p(z)), the mean of T over joint samples is the mutual
        information itself (the plug-in estimate of the method notes).
        """
        return self.log_ratio(head, sample).mean()

    def mi_critic_loss(
        self, head: str, sample: Sample, generator: torch.Generator | None = None, features: Tensor | None = None
    ) -> Tensor:
        """The critic loss of an MI head: joint tuples (positive) against the same batch with z shuffled.

        Both sides share (x, y), so their pair features are computed once; pass ``features`` to
        reuse them from another head, detached when this head must not train the shared feature map.
        """
        if features is None and "x" in self._variables(head):
            features = self.pair_features(sample)
        t_joint = self.log_ratio(head, sample, features)
        return logistic_loss(t_joint, self.log_ratio(head, sample.shuffled("z", generator), features))

    def accuracy(self, head: str, p: Sample, q: Sample) -> Tensor:
        """Fraction of p and q items the head classifies correctly (for logging)."""
        with torch.no_grad():
            right = torch.cat([self.log_ratio(head, p) > 0, self.log_ratio(head, q) <= 0])
        return right.float().mean()

    def _variables(self, head: str) -> tuple[Variable, ...]:
        if head not in self.heads:
            raise ValueError(f"unknown critic head {head!r}; this estimator has: {', '.join(self.heads)}")
        return self.heads[head]


def _check_head(name: str, variables: Sequence[str], latent: Mapping[str, int]) -> tuple[Variable, ...]:
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


def make_adversarial_js(
    params: AdversarialJSParams,
    context: BuildContext,
    *,
    x: Modality,
    y: Modality,
    latent: Mapping[str, int],
    heads: Mapping[str, Sequence[str]],
) -> AdversarialJS:
    """Adversarial density-ratio critics with the logistic (Jensen-Shannon) loss."""
    return AdversarialJS(x, y, latent, heads, params).to(context.device)


@hookimpl
def wynerkit_register_estimators(register: Register) -> None:
    register("adversarial-js", make_adversarial_js, params=AdversarialJSParams)
