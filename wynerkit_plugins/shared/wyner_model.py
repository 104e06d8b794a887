"""The variational Wyner model's networks (paper section 2, Table 1), shared by three built-in models.

The models ``variational-wyner``, ``wyner-degenerate-local`` and ``iiae`` build on these classes;
each registers itself in its own module under ``wynerkit_plugins/models/``.

Networks follow the authors' code (method notes, "Architectures"): a joint encoder q(z|x,y) with
its own trunks; per modality a conditional encoder q(z|x) and a local encoder q(u|z,x) reading one
shared trunk; deterministic decoders x(z,u) and y(z,v); standard normal priors on z, u and v.
Encoders are deterministic maps unless ``noise_dim`` > 0 appends noise features to their inputs.
``local_reads_z=False`` gives the ablation ``wyner-degenerate-local`` (see ``models/degenerate_local.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, Protocol

import torch
from pydantic import Field, NonNegativeInt, PositiveInt
from torch import Tensor, nn
from torch.nn.utils.parametrize import is_parametrized

from wynerkit import BuildContext, ComponentParams, Modality, ModalitySpec, Sample


class LatentSizes(ComponentParams):
    """Sizes of the common code z and of the local codes u (of x) and v (of y)."""

    z: PositiveInt = Field(16, description="size of the common code z shared by x and y")
    u: PositiveInt = Field(8, description="size of the local code u (what is particular to x)")
    v: PositiveInt = Field(8, description="size of the local code v (what is particular to y)")


class VariationalWynerParams(ComponentParams):
    """Params of ``variational-wyner``: latent sizes, the two modalities and encoder noise."""

    latent: LatentSizes = Field(LatentSizes(), description="latent sizes; the paper uses (16, 8, 8) on MNIST-SVHN")
    x: ModalitySpec = Field(description="the modality of x, e.g. {name: vector, dim: 512}")
    y: ModalitySpec = Field(description="the modality of y, e.g. {name: vector, dim: 512}")
    noise_dim: NonNegativeInt = Field(
        0,
        description="standard-normal noise features each encoder appends to its trunk features before its "
        "latent head (implicit stochastic encoders); 0 gives the paper's deterministic encoders",
    )
    code_scale: Literal["free", "prior"] = Field(
        "free",
        description="free: latent heads are plain linear layers (the paper); prior: every encoder's code is "
        "standardised per dimension over the batch (BatchNorm without affine), so codes have the prior's mean 0 "
        "and std 1 from the first step and code matching cannot shrink them to nothing",
    )
    local_noise: float = Field(
        0.0,
        ge=0,
        lt=1,
        allow_inf_nan=False,
        description="s: in training, the local codes become sqrt(1 - s^2) * code + s * N(0, I) (stochastic local "
        "encoders), which bounds what u and v can carry and leaves the content to z; 0: deterministic (the paper)",
    )
    init: Literal["torch", "xavier"] = Field(
        "torch",
        description="initial weights of every linear and convolutional layer: torch's defaults, or xavier "
        "(xavier-uniform weights, zero biases, as in the authors' code)",
    )


def with_noise(features: Tensor, noise_dim: int, generator: torch.Generator | None) -> Tensor:
    """Append ``noise_dim`` standard-normal features: the noise input of an implicit stochastic encoder."""
    if noise_dim == 0:
        return features
    noise = torch.randn(features.shape[0], noise_dim, generator=generator, device=features.device, dtype=features.dtype)
    return torch.cat([features, noise], dim=1)


def as_module(net: object, what: str) -> nn.Module:
    """A network the model owns must be an nn.Module, or its weights would be neither trained nor moved."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"{what} must return a torch.nn.Module, got {type(net).__name__}")
    return net


def code_head(in_features: int, size: int, standardise: bool) -> nn.Module:
    """A latent head: one linear layer, followed when ``standardise`` by a per-dimension BatchNorm without affine
    (the code's batch mean 0 and std 1, the prior's)."""
    linear = nn.Linear(in_features, size)
    return nn.Sequential(linear, nn.BatchNorm1d(size, affine=False)) if standardise else linear


class JointEncoder(nn.Module):
    """q(z|x,y): a trunk of its own per modality, features concatenated, one linear head."""

    def __init__(self, x: Modality, y: Modality, z_dim: int, noise_dim: int, standardise: bool = False) -> None:
        super().__init__()
        self.x_trunk = as_module(x.encoder_trunk(), "x.encoder_trunk()")
        self.y_trunk = as_module(y.encoder_trunk(), "y.encoder_trunk()")
        self.head = code_head(self.x_trunk.out_features + self.y_trunk.out_features + noise_dim, z_dim, standardise)
        self.noise_dim = noise_dim

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        features = torch.cat([self.x_trunk(x), self.y_trunk(y)], dim=1)
        return self.head(with_noise(features, self.noise_dim, None))


class Branch(nn.Module):
    """One modality's networks: q(z|x) and q(u|z,x) reading one shared trunk, and the decoder x(z,u).

    Methods take the trunk features ``h`` rather than the data, so a caller computes them once.
    ``features`` computes them, and while ``remembering`` is on it keeps the last data tensor's: one
    training iteration encodes the same batch for q_xy->, p_x->y and R_y2x, and pays the trunk once.
    """

    def __init__(
        self,
        modality: Modality,
        z_dim: int,
        local_dim: int,
        noise_dim: int,
        local_reads_z: bool,
        *,
        standardise: bool = False,
        local_noise: float = 0.0,
    ) -> None:
        super().__init__()
        self.trunk = as_module(modality.encoder_trunk(), "encoder_trunk()")
        features = self.trunk.out_features
        self.z_head = code_head(features + noise_dim, z_dim, standardise)
        self.local_head = code_head((z_dim if local_reads_z else 0) + features + noise_dim, local_dim, standardise)
        self.local_reads_z = local_reads_z
        self.local_noise = local_noise
        self.decoder = modality.decoder(z_dim + local_dim)
        self.local_dim = local_dim
        self.noise_dim = noise_dim
        self.remembering = False
        self._remembered: tuple[Tensor, Tensor] | None = None

    def features(self, data: Tensor) -> Tensor:
        """The trunk's features of ``data``; while remembering, those of the same tensor object are reused."""
        if self._remembered is not None and self._remembered[0] is data:
            return self._remembered[1]
        h = self.trunk(data)
        if self.remembering:
            self._remembered = (data, h)
        return h

    def forget(self) -> None:
        self.remembering, self._remembered = False, None

    def encode_z(self, h: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.z_head(with_noise(h, self.noise_dim, generator))

    def encode_local(self, z: Tensor, h: Tensor, generator: torch.Generator | None) -> Tensor:
        inputs = torch.cat([z, h], dim=1) if self.local_reads_z else h
        code = self.local_head(with_noise(inputs, self.noise_dim, generator))
        if not (self.training and self.local_noise):
            return code
        s = self.local_noise  # mixing keeps a standardised code's variance at 1, the prior's
        noise = torch.randn(code.shape, generator=generator, device=code.device, dtype=code.dtype)
        return (1 - s * s) ** 0.5 * code + s * noise

    def decode(self, z: Tensor, local: Tensor) -> Tensor:
        return self.decoder(torch.cat([z, local], dim=1))


class DecodingBranch(Protocol):
    """What ``PriorDecoding`` needs of a modality's branch."""

    local_dim: int

    def decode(self, z: Tensor, local: Tensor) -> Tensor: ...


class PriorDecoding:
    """The samplers every model with per-modality branches and N(0, I) priors shares.

    Needs ``latent`` (sizes of z, u, v), ``x_branch`` / ``y_branch`` offering ``decode(z, local)``,
    and ``_transfer(data, source, target, generator) -> (z, own local, other local, decoded)``;
    used by ``variational-wyner`` and the ``iiae`` baseline.
    """

    latent: dict[str, int]
    x_branch: DecodingBranch
    y_branch: DecodingBranch
    _transfer: Callable[..., tuple[Tensor, Tensor, Tensor, Tensor]]

    def joint(self, n: int, generator: torch.Generator | None = None) -> Sample:
        """p->xy: z, u, v from the priors, x = x(z,u), y = y(z,v)."""
        z, u, v = (self._prior(self.latent[name], n, generator) for name in ("z", "u", "v"))
        return Sample(x=self.x_branch.decode(z, u), y=self.y_branch.decode(z, v), z=z, u=u, v=v)

    def x_to_y(self, x: Tensor, generator: torch.Generator | None = None) -> Sample:
        """p_x->y: x from data, z from x's common-code encoder, v from the prior, y = y(z,v), u from x."""
        z, u, v, y = self._transfer(x, self.x_branch, self.y_branch, generator)
        return Sample(x=x, y=y, z=z, u=u, v=v)

    def y_to_x(self, y: Tensor, generator: torch.Generator | None = None) -> Sample:
        """p_y->x: y from data, z from y's common-code encoder, u from the prior, x = x(z,u), v from y."""
        z, v, u, x = self._transfer(y, self.y_branch, self.x_branch, generator)
        return Sample(x=x, y=y, z=z, u=u, v=v)

    def decode(self, z: Tensor, u: Tensor | None = None, v: Tensor | None = None) -> Sample:
        """Decode x from (z, u) and/or y from (z, v); returns a Sample with z, u, v and outputs."""
        if u is None and v is None:
            raise ValueError("decode needs u (to decode x) and/or v (to decode y)")
        x = None if u is None else self.x_branch.decode(z, u)
        y = None if v is None else self.y_branch.decode(z, v)
        return Sample(x=x, y=y, z=z, u=u, v=v)

    def _prior(self, size: int, n: int, generator: torch.Generator | None) -> Tensor:
        """n draws from N(0, I) of dimension ``size``, on the model's device and dtype."""
        reference = next(self.parameters())
        return torch.randn(n, size, generator=generator, device=reference.device, dtype=reference.dtype)


class VariationalWyner(PriorDecoding, nn.Module):
    """The variational Wyner model; implements ``wynerkit.BimodalModel``.

    Samplers drawing from a prior take a ``torch.Generator`` (on the model's device) that also
    drives encoder noise. ``variational`` and ``encode_z`` take none (the interface gives them
    none), so with ``noise_dim`` > 0 their noise comes from torch's global generator.
    """

    def __init__(
        self,
        x: Modality,
        y: Modality,
        latent: LatentSizes,
        noise_dim: int = 0,
        local_reads_z: bool = True,
        *,
        standardise: bool = False,
        local_noise: float = 0.0,
    ) -> None:
        super().__init__()
        self.x_modality = x
        self.y_modality = y
        self.latent = {"z": latent.z, "u": latent.u, "v": latent.v}
        self.noise_dim = noise_dim
        self.joint_encoder = JointEncoder(x, y, latent.z, noise_dim, standardise)
        codes = {"standardise": standardise, "local_noise": local_noise}
        self.x_branch = Branch(x, latent.z, latent.u, noise_dim, local_reads_z, **codes)
        self.y_branch = Branch(y, latent.z, latent.v, noise_dim, local_reads_z, **codes)

    def variational(self, x: Tensor, y: Tensor) -> Sample:
        """q_xy->: data (x, y) with z ~ q(z|x,y), u ~ q(u|z,x), v ~ q(v|z,y)."""
        z = self.joint_encoder(x, y)
        u = self.x_branch.encode_local(z, self.x_branch.features(x), None)
        v = self.y_branch.encode_local(z, self.y_branch.features(y), None)
        return Sample(x=x, y=y, z=z, u=u, v=v)

    @contextmanager
    def reusing_features(self) -> Iterator[None]:
        """Within, each branch computes its trunk's features of one data tensor once, however often it is encoded.

        The trainer holds this open for one set of samples (weights unchanged; the features keep their
        graph). The outputs are the same as without it; BatchNorm's running statistics take one update
        per batch instead of one per encoding of it.
        """
        for branch in (self.x_branch, self.y_branch):
            branch.forget()  # nothing from before the scope: the weights may have changed since
            branch.remembering = True
        try:
            yield
        finally:
            for branch in (self.x_branch, self.y_branch):
                branch.forget()

    def encode_z(self, x: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        """The common code from x, from y, or from both (q(z|x), q(z|y), q(z|x,y))."""
        if x is not None and y is not None:
            return self.joint_encoder(x, y)
        if x is not None:
            return self.x_branch.encode_z(self.x_branch.features(x), None)
        if y is not None:
            return self.y_branch.encode_z(self.y_branch.features(y), None)
        raise ValueError("encode_z needs x, y or both")

    def encode_u(self, z: Tensor, x: Tensor) -> Tensor:
        """q(u|z,x): the style of x given a common code, for style transfer (paper Figure 1c)."""
        return self.x_branch.encode_local(z, self.x_branch.features(x), None)

    def encode_v(self, z: Tensor, y: Tensor) -> Tensor:
        """q(v|z,y): the style of y given a common code, for style transfer."""
        return self.y_branch.encode_local(z, self.y_branch.features(y), None)

    def _transfer(
        self, data: Tensor, source: Branch, target: Branch, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """z and the source's local code from one trunk pass; the target's local code from its prior."""
        h = source.features(data)
        z = source.encode_z(h, generator)
        own_local = source.encode_local(z, h, generator)
        other_local = self._prior(target.local_dim, data.shape[0], generator)
        return z, own_local, other_local, target.decode(z, other_local)


def initialise(network: nn.Module, init: Literal["torch", "xavier"]) -> nn.Module:
    """Re-initialise every linear and (transposed) convolutional layer: xavier-uniform weights, zero biases.

    ``torch`` keeps torch's defaults. Parametrised layers (spectral norm) are left alone.
    """
    if init == "xavier":
        for module in network.modules():
            if isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d) and not is_parametrized(module):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return network


def build_variational_wyner(
    params: VariationalWynerParams, context: BuildContext, *, local_reads_z: bool = True
) -> VariationalWyner:
    """The two nested modalities from the spec, then the initialised networks on ``context.device``."""
    x, y = context.build(params.x), context.build(params.y)
    model = VariationalWyner(
        x,
        y,
        params.latent,
        params.noise_dim,
        local_reads_z,
        standardise=params.code_scale == "prior",
        local_noise=params.local_noise,
    )
    return initialise(model, params.init).to(context.device)


__all__ = [
    "JointEncoder",
    "LatentSizes",
    "PriorDecoding",
    "VariationalWyner",
    "VariationalWynerParams",
    "as_module",
    "build_variational_wyner",
    "initialise",
]
