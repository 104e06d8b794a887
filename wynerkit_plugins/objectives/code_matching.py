"""Common-code matching terms: a deviation from the paper, off unless a spec names them.

``Z_x2y`` pulls the conditional code q(z|x) towards the joint code q(z|x,y) of the same pair, and
``Z_y2x`` pulls q(z|y) towards it, by mean squared error. The paper ties the conditional models to
the variational distribution only through the adversarial D terms, whose critics must first learn
which x pairs with which y; these terms give the encoders that signal directly, the way JMVAE's
KL(q(z|x,y) || q(z|x)) does. Both sides receive gradients (as in JMVAE), so the joint code moves
towards what each modality alone can tell about the pair: their common part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from torch import Tensor

from wynerkit import Distribution, StepContext, hookimpl
from wynerkit.hookspecs import Register
from wynerkit.sample import Variable
from wynerkit_plugins.shared.term_registration import register_terms


@dataclass(frozen=True)
class CodeMatching:
    """Mean squared error between a conditional model's z and the variational z of the same pairs."""

    conditional: Distribution
    multiplier: None = None
    critic_heads: ClassVar[Mapping[str, tuple[Variable, ...]]] = MappingProxyType({})

    def generator_loss(self, step: StepContext) -> Tensor:
        (z_one,) = step.sample(self.conditional).require("z")
        (z_joint,) = step.sample("variational").require("z")
        return (z_one - z_joint).square().mean()

    def critic_loss(self, step: StepContext) -> None:
        return None


TERMS: dict[str, tuple[CodeMatching, str]] = {
    "Z_x2y": (CodeMatching("x2y"), "||q(z|x) - q(z|x,y)||^2: direct common-code matching (a deviation)."),
    "Z_y2x": (CodeMatching("y2x"), "||q(z|y) - q(z|x,y)||^2: direct common-code matching (a deviation)."),
}


@hookimpl
def wynerkit_register_objective_terms(register: Register) -> None:
    """Register Z_x2y and Z_y2x."""
    register_terms(register, TERMS)
