"""The IIAE baseline: model ``iiae`` and its loss, the objective term ``IIAE``.

Interaction-information autoencoder, Hwang et al., "Variational interaction information
maximization for cross-domain disentanglement" (NeurIPS 2020), code ``gr8joo/IIAE``
(``zs_vae_model.py``, ``encoder.py``); method notes, "Baselines".

Networks. Every encoder is Gaussian (a mean head and a log-variance head on one linear layer):
- shared encoders per modality r(s|x), r(s|y): a trunk of their own, ``latent.z`` codes;
- a joint shared encoder q(s|x,y): trunks of its own per modality, features concatenated
  (``shared/wyner_model.JointEncoder`` with a head of twice the size);
- exclusive encoders q(e_x|x), q(e_y|y): a trunk of their own, ``latent.u`` / ``latent.v`` codes;
- decoders x(s, e_x), y(s, e_y): ``modality.decoder(z + local)``; priors N(0, I) on s, e_x, e_y.
Log-variances are clamped at log(1e4) as in gr8joo/IIAE ("variance at most 10000").
gr8joo/IIAE's joint encoder reads the first hidden layer of the two shared encoders; here it has
its own trunks, like ``variational-wyner``'s q(z|x,y), so both models use the same encoder networks.

The ``BimodalModel`` view: z is the shared code s, u and v the exclusive codes e_x and e_y. Codes
are reparameterised samples in training mode and posterior means in eval mode (gr8joo/IIAE
samples only when training). ``encode_z`` always gives posterior means (retrieval uses the shared
means), and ``encode_u`` / ``encode_v`` give the exclusive means: IIAE's exclusive encoders read
the data alone, so these ignore their ``z`` argument.

The loss's weights (``beta``, ``lam``, ``recon_scale``, ``anneal_steps``) are the term's params in
the spec: ``objective.terms: {IIAE: {weight: 1, beta: 0.5, ...}}``. The annealing weight
r = 1 - exp(-t / anneal_steps) counts t, the generator updates taken so far, in the model's buffer
``anneal_step``: it is saved in every checkpoint (and copied into the EMA model), so a resumed run
continues the schedule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import Field, NonNegativeFloat, NonNegativeInt, model_validator
from torch import Tensor, nn

from wynerkit import BimodalModel, BuildContext, ComponentParams, Modality, ModalitySpec, Sample, StepContext, hookimpl
from wynerkit.errors import UsageError
from wynerkit.sample import Variable
from wynerkit_plugins.shared.wyner_model import JointEncoder, LatentSizes, PriorDecoding, as_module

if TYPE_CHECKING:
    from wynerkit.hookspecs import Register

LOGVAR_MAX = math.log(1.0e4)
"""Upper clamp of every encoder's log-variance (gr8joo/IIAE: 9.21035, a variance of at most 10000)."""


LOSS_WEIGHTS = ("beta", "lam", "recon_scale", "anneal_steps")
"""The params of term ``IIAE`` that ``model: {name: iiae}`` held before terms took params."""


class IIAEParams(ComponentParams):
    """Params of ``iiae``: latent sizes and the two modalities (the loss weights are term ``IIAE``'s)."""

    latent: LatentSizes = Field(
        LatentSizes(), description="sizes of the shared code (z) and of the exclusive codes of x (u) and y (v)"
    )
    x: ModalitySpec = Field(description="the modality of x, e.g. {name: vector, dim: 512}")
    y: ModalitySpec = Field(description="the modality of y, e.g. {name: vector, dim: 512}")

    @model_validator(mode="before")
    @classmethod
    def _weights_moved(cls, data: Any) -> Any:
        moved = [key for key in LOSS_WEIGHTS if isinstance(data, dict) and key in data]
        if moved:
            raise ValueError(
                f"{', '.join(moved)}: IIAE's loss weights are params of the term IIAE now; remove them here and "
                "write objective.terms: {IIAE: {weight: 1, " + ", ".join(f"{k}: {data[k]}" for k in moved) + "}}"
            )
        return data


class IIAELossParams(ComponentParams):
    """Params of the term ``IIAE``: gr8joo/IIAE's loss weights and KL annealing."""

    beta: NonNegativeFloat = Field(
        0.5, allow_inf_nan=False, description="IIAE's BETA: weight of KL(q(s|x,y) || N(0,I)) (annealed)"
    )
    lam: NonNegativeFloat = Field(
        1.0,
        allow_inf_nan=False,
        description="IIAE's LAMBDA: weight of KL(q(s|x,y) || r(s|x)) + KL(q(s|x,y) || r(s|y))",
    )
    recon_scale: NonNegativeFloat = Field(
        10.0, allow_inf_nan=False, description="IIAE's l1_weight: scale of the squared reconstruction errors"
    )
    anneal_steps: NonNegativeInt = Field(
        2000,
        description="IIAE's ar: KL weights are annealed by r = 1 - exp(-step / anneal_steps); 0: no annealing (r = 1)",
    )


# --- Gaussians ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiagonalGaussian:
    """N(mean, diag(exp(logvar))) per item: tensors ``[B, d]``."""

    mean: Tensor
    logvar: Tensor

    @classmethod
    def from_head(cls, output: Tensor) -> DiagonalGaussian:
        """Split a head's output ``[B, 2d]`` into mean and (clamped) log-variance."""
        mean, logvar = output.chunk(2, dim=1)
        return cls(mean, logvar.clamp(max=LOGVAR_MAX))

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """A reparameterised draw mean + exp(logvar / 2) * eps, eps ~ N(0, I)."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + torch.exp(0.5 * self.logvar) * eps


def kl_to_standard_normal(q: DiagonalGaussian) -> Tensor:
    """KL(q || N(0, I)) per item, ``[B]``: 0.5 * sum(mean^2 + exp(logvar) - 1 - logvar)."""
    return 0.5 * (q.mean.square() + q.logvar.exp() - 1.0 - q.logvar).sum(dim=1)


def kl_divergence(q: DiagonalGaussian, p: DiagonalGaussian) -> Tensor:
    """KL(q || p) per item, ``[B]``, for diagonal Gaussians:

    0.5 * sum(logvar_p - logvar_q - 1 + (exp(logvar_q) + (mean_q - mean_p)^2) / exp(logvar_p)).
    """
    ratio = (q.logvar.exp() + (q.mean - p.mean).square()) / p.logvar.exp()
    return 0.5 * (p.logvar - q.logvar - 1.0 + ratio).sum(dim=1)


def anneal_weight(step: Tensor, anneal_steps: int) -> Tensor:
    """r = 1 - exp(-step / anneal_steps) (gr8joo/IIAE's reg_coeff); 1 when ``anneal_steps`` is 0."""
    if anneal_steps == 0:
        return torch.ones((), device=step.device)
    return -torch.expm1(-step.float() / anneal_steps)  # 1 - exp(-t), exact for small t too


# --- networks ------------------------------------------------------------------------------------


class GaussianEncoder(nn.Module):
    """A Gaussian encoder of one modality: its own trunk, one linear head giving mean and log-variance."""

    def __init__(self, modality: Modality, size: int) -> None:
        super().__init__()
        self.trunk = as_module(modality.encoder_trunk(), "encoder_trunk()")
        self.head = nn.Linear(self.trunk.out_features, 2 * size)

    def forward(self, data: Tensor) -> DiagonalGaussian:
        return DiagonalGaussian.from_head(self.head(self.trunk(data)))


class IIAEBranch(nn.Module):
    """One modality's networks: shared encoder r(s|x), exclusive encoder q(e_x|x), decoder x(s, e_x)."""

    def __init__(self, modality: Modality, shared_dim: int, local_dim: int) -> None:
        super().__init__()
        self.shared = GaussianEncoder(modality, shared_dim)
        self.exclusive = GaussianEncoder(modality, local_dim)
        self.decoder = as_module(modality.decoder(shared_dim + local_dim), "decoder()")
        self.local_dim = local_dim

    def decode(self, shared: Tensor, local: Tensor) -> Tensor:
        return self.decoder(torch.cat([shared, local], dim=1))


@dataclass(frozen=True)
class Posteriors:
    """Every encoder's Gaussian on one batch (x, y)."""

    shared: DiagonalGaussian
    """q(s|x,y), the joint shared encoder."""
    shared_x: DiagonalGaussian
    """r(s|x)."""
    shared_y: DiagonalGaussian
    """r(s|y)."""
    exclusive_x: DiagonalGaussian
    """q(e_x|x)."""
    exclusive_y: DiagonalGaussian
    """q(e_y|y)."""


class IIAE(PriorDecoding, nn.Module):
    """The IIAE model; implements ``wynerkit.BimodalModel`` (z = shared code, u / v = exclusive codes)."""

    def __init__(
        self,
        x: Modality,
        y: Modality,
        latent: LatentSizes,
    ) -> None:
        super().__init__()
        self.x_modality = x
        self.y_modality = y
        self.latent = {"z": latent.z, "u": latent.u, "v": latent.v}
        self.joint_shared = JointEncoder(x, y, 2 * latent.z, noise_dim=0)
        self.x_branch = IIAEBranch(x, latent.z, latent.u)
        self.y_branch = IIAEBranch(y, latent.z, latent.v)
        self.register_buffer("anneal_step", torch.zeros((), dtype=torch.long))

    # -- the loss's view ---------------------------------------------------------------------------
    def posteriors(self, x: Tensor, y: Tensor) -> Posteriors:
        """Every encoder's Gaussian on (x, y), each network run once."""
        return Posteriors(
            shared=self._joint_shared(x, y),
            shared_x=self.x_branch.shared(x),
            shared_y=self.y_branch.shared(y),
            exclusive_x=self.x_branch.exclusive(x),
            exclusive_y=self.y_branch.exclusive(y),
        )

    def code(self, q: DiagonalGaussian, generator: torch.Generator | None = None) -> Tensor:
        """A reparameterised sample of q in training mode, its mean in eval mode."""
        return q.sample(generator) if self.training else q.mean

    def advance_anneal(self) -> None:
        """Count one generator update."""
        self.anneal_step.add_(1)

    # -- BimodalModel (joint, x_to_y, y_to_x, decode and _prior come from PriorDecoding) ---------
    def variational(self, x: Tensor, y: Tensor) -> Sample:
        """q_xy->: z from q(s|x,y), u from q(e_x|x), v from q(e_y|y) (samples when training, else means)."""
        z = self.code(self._joint_shared(x, y))
        u = self.code(self.x_branch.exclusive(x))
        v = self.code(self.y_branch.exclusive(y))
        return Sample(x=x, y=y, z=z, u=u, v=v)

    def encode_z(self, x: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        """The mean of q(s|x,y), r(s|x) or r(s|y), by what is given (retrieval uses these means)."""
        if x is not None and y is not None:
            return self._joint_shared(x, y).mean
        if x is not None:
            return self.x_branch.shared(x).mean
        if y is not None:
            return self.y_branch.shared(y).mean
        raise ValueError("encode_z needs x, y or both")

    def encode_u(self, z: Tensor, x: Tensor) -> Tensor:
        """The mean of q(e_x|x); ``z`` is ignored (IIAE's exclusive encoders read the data alone)."""
        del z
        return self.x_branch.exclusive(x).mean

    def encode_v(self, z: Tensor, y: Tensor) -> Tensor:
        """The mean of q(e_y|y); ``z`` is ignored (IIAE's exclusive encoders read the data alone)."""
        del z
        return self.y_branch.exclusive(y).mean

    # -- helpers -----------------------------------------------------------------------------------
    def _joint_shared(self, x: Tensor, y: Tensor) -> DiagonalGaussian:
        return DiagonalGaussian.from_head(self.joint_shared(x, y))

    def _transfer(
        self, data: Tensor, source: IIAEBranch, target: IIAEBranch, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The source's shared and exclusive codes; the target's exclusive code from its prior."""
        z = self.code(source.shared(data), generator)
        own_local = self.code(source.exclusive(data), generator)
        other_local = self._prior(target.local_dim, data.shape[0], generator)
        return z, own_local, other_local, target.decode(z, other_local)


def make_iiae(params: IIAEParams, context: BuildContext) -> IIAE:
    """The IIAE baseline (Hwang et al. 2020): Gaussian shared and exclusive encoders; train with term IIAE."""
    x, y = context.build(params.x), context.build(params.y)
    return IIAE(x, y, params.latent).to(context.device)


# --- the loss --------------------------------------------------------------------------------------


def squared_error(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over a batch (IIAE's ``reduce_mean((output - target)**2)``), averaged over every
    non-batch dimension: IIAE's loss is MSE whatever loss a modality would use for the Wyner model (the
    built-in modalities' ``l2`` is this same number, so no modality is asked which loss it has).
    """
    return (output - target).square().flatten(1).mean(dim=1).mean()


def require_iiae(model: BimodalModel) -> IIAE:
    """The model as ``IIAE``, or a UsageError: the IIAE loss reads the encoders' Gaussians and counter."""
    if not isinstance(model, IIAE):
        raise UsageError(
            f"objective.terms: term IIAE is the loss of the iiae model, but the model is {type(model).__name__} "
            "(no Gaussian shared and exclusive encoders); use model.name: iiae, or other terms for this model"
        )
    return model


@dataclass(frozen=True)
class IIAELoss:
    """IIAE's whole loss on the data batch (one forward pass of every encoder and both decoders).

    (beta + lam) * recon_scale * (MSE_x + MSE_y) + r (beta + lam) (KL_x + KL_y) + r beta KL_s
    + lam (KL(q_s || r_x) + KL(q_s || r_y)), with the weights from the term's params and
    r = 1 - exp(-t / anneal_steps) at t generator updates so far (the model's counter). Each
    generator-phase call in training mode counts one update (after reading r, as gr8joo/IIAE's global step).
    """

    beta: float = 0.5
    lam: float = 1.0
    recon_scale: float = 10.0
    anneal_steps: int = 2000
    multiplier: None = None
    critic_heads: ClassVar[Mapping[str, tuple[Variable, ...]]] = MappingProxyType({})

    def generator_loss(self, step: StepContext) -> Tensor:
        model = require_iiae(step.model)
        x, y = step.batch.require("x", "y")
        q = model.posteriors(x, y)
        shared = model.code(q.shared)
        x_hat = model.x_branch.decode(shared, model.code(q.exclusive_x))
        y_hat = model.y_branch.decode(shared, model.code(q.exclusive_y))
        reconstruction = squared_error(x_hat, x) + squared_error(y_hat, y)
        exclusive_kl = kl_to_standard_normal(q.exclusive_x).mean() + kl_to_standard_normal(q.exclusive_y).mean()
        shared_kl = kl_to_standard_normal(q.shared).mean()
        interaction_kl = kl_divergence(q.shared, q.shared_x).mean() + kl_divergence(q.shared, q.shared_y).mean()
        r = anneal_weight(model.anneal_step, self.anneal_steps)  # a 0-d tensor: no device sync
        if model.training and not step.critic_phase:
            model.advance_anneal()
        both = self.beta + self.lam
        return (
            both * self.recon_scale * reconstruction
            + r * both * exclusive_kl
            + r * self.beta * shared_kl
            + self.lam * interaction_kl
        )

    def critic_loss(self, step: StepContext) -> None:
        return None


def make_iiae_loss(params: IIAELossParams, context: BuildContext) -> IIAELoss:
    """IIAE's loss (Hwang et al. 2020): squared reconstruction, annealed KLs, KL(q(s|x,y) || r(s|x), r(s|y))."""
    del context
    return IIAELoss(params.beta, params.lam, params.recon_scale, params.anneal_steps)


@hookimpl
def wynerkit_register_models(register: Register) -> None:
    """Register ``iiae``; its summary is the factory's first docstring line."""
    register("iiae", make_iiae, params=IIAEParams)


@hookimpl
def wynerkit_register_objective_terms(register: Register) -> None:
    """Register ``IIAE``, the loss of the ``iiae`` model, with its weights as params."""
    register("IIAE", make_iiae_loss, params=IIAELossParams)


__all__ = [
    "IIAE",
    "DiagonalGaussian",
    "IIAELoss",
    "IIAELossParams",
    "IIAEParams",
    "anneal_weight",
    "kl_divergence",
    "kl_to_standard_normal",
    "make_iiae",
    "make_iiae_loss",
    "wynerkit_register_models",
    "wynerkit_register_objective_terms",
]
