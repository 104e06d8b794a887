"""Reconstruction-consistency terms, weighted by ``lambda_rec`` (paper: "reconstruction consistency").

Shared by the plugin ``reconstruction-terms`` (which registers them) and the ``reconstruction``
evaluator (which reports them on held-out data, so its numbers are exactly what the terms measure).

Each compares data with what the model makes of it, using the modality's own loss (L1 on images,
L2 on feature vectors); the latent term compares codes by mean squared error:
- joint ``R_xy2x``: x against x(z, u) with z = q(z|x,y), u = q(u|z,x) (and ``R_xy2y``);
- marginal ``R_x2x``: x against x(z, u) with z = q(z|x), u = q(u|z,x) (and ``R_y2y``);
- conditional ``R_x2y``: y against y(z, v) with z = q(z|x), v = q(v|z,y) (and ``R_y2x``);
- latent ``R_zuv``: (z, u, v) from the priors against the joint encoding of their decoding.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Literal

import torch
from torch import Tensor

from wynerkit import Distribution, StepContext
from wynerkit.sample import Variable

Side = Literal["x", "y"]
LOCAL_OF: dict[Side, Variable] = {"x": "u", "y": "v"}
NO_HEADS: Mapping[str, tuple[Variable, ...]] = MappingProxyType({})


class DataReconstruction(ABC):
    """A term comparing one modality's data with what the model makes of it (``R_xy2x`` ... ``R_y2x``).

    ``reconstruction(step)`` is the model's output for the data side ``target``; ``per_item(step)``
    its loss per item under the modality's own loss (``[B]``), and the term's value is their mean.
    The evaluator ``reconstruction`` reads the same two methods, so its numbers are these terms'.
    """

    multiplier: Literal["lambda_rec"] = "lambda_rec"
    critic_heads: ClassVar[Mapping[str, tuple[Variable, ...]]] = NO_HEADS

    @property
    @abstractmethod
    def target(self) -> Side:
        """The data side this term reconstructs."""

    @abstractmethod
    def reconstruction(self, step: StepContext) -> Tensor:
        """The model's output for ``target`` (a batch of that modality)."""

    def per_item(self, step: StepContext) -> Tensor:
        modality = step.model.x_modality if self.target == "x" else step.model.y_modality
        (data,) = step.batch.require(self.target)
        return modality.reconstruction_loss(self.reconstruction(step), data)

    def generator_loss(self, step: StepContext) -> Tensor:
        return self.per_item(step).mean()

    def critic_loss(self, step: StepContext) -> None:
        return None


@dataclass(frozen=True)
class SelfReconstruction(DataReconstruction):
    """One modality decoded from the (z, local code) a distribution's sample holds for the data."""

    side: Side
    distribution: Distribution

    @property
    def target(self) -> Side:
        return self.side

    def reconstruction(self, step: StepContext) -> Tensor:
        return step.reconstruct(self.side, self.distribution)


@dataclass(frozen=True)
class ConditionalReconstruction(DataReconstruction):
    """The target decoded from the source's common code and the target's own local code."""

    source: Side

    @property
    def target(self) -> Side:
        return "y" if self.source == "x" else "x"

    def reconstruction(self, step: StepContext) -> Tensor:
        target = self.target
        (z,) = step.sample("x2y" if self.source == "x" else "y2x").require("z")
        (data,) = step.batch.require(target)
        encode_local = step.model.encode_v if target == "y" else step.model.encode_u
        decoded = step.model.decode(z, **{LOCAL_OF[target]: encode_local(z, data)})
        return getattr(decoded, target)


@dataclass(frozen=True)
class LatentReconstruction:
    """(z, u, v) from the priors, decoded, then encoded jointly: mean squared error to the codes."""

    multiplier: Literal["lambda_rec"] = "lambda_rec"
    critic_heads: ClassVar[Mapping[str, tuple[Variable, ...]]] = NO_HEADS

    def generator_loss(self, step: StepContext) -> Tensor:
        drawn = step.sample("joint")
        x, y = drawn.require("x", "y")
        encoded = step.model.variational(x, y)
        codes = torch.cat(drawn.require("z", "u", "v"), dim=1)
        return (torch.cat(encoded.require("z", "u", "v"), dim=1) - codes).square().mean()

    def critic_loss(self, step: StepContext) -> None:
        return None


TERMS = {
    "R_xy2x": (SelfReconstruction("x", "variational"), "x against x(z,u) with z from q(z|x,y) (x lambda_rec)."),
    "R_xy2y": (SelfReconstruction("y", "variational"), "y against y(z,v) with z from q(z|x,y) (x lambda_rec)."),
    "R_x2x": (SelfReconstruction("x", "x2y"), "x against x(z,u) with z from q(z|x) (x lambda_rec)."),
    "R_y2y": (SelfReconstruction("y", "y2x"), "y against y(z,v) with z from q(z|y) (x lambda_rec)."),
    "R_x2y": (
        ConditionalReconstruction("x"),
        "y against y(z,v) with z from q(z|x), v from q(v|z,y) (times lambda_rec).",
    ),
    "R_y2x": (
        ConditionalReconstruction("y"),
        "x against x(z,u) with z from q(z|y), u from q(u|z,x) (times lambda_rec).",
    ),
    "R_zuv": (LatentReconstruction(), "(z,u,v) from the priors against the joint encoding of their decoding."),
}
