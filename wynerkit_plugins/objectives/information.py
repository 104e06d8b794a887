"""Common-information terms: I(X,Y;Z) under a distribution, weighted by ``lambda_ci``.

Wyner's common information is the least I(X,Y;Z) such that X and Y are independent given Z; the
paper regularises each model distribution's I(X,Y;Z) towards it. A critic head separates the
distribution's (x, y, z) tuples from the same batch with z shuffled (samples of p(x,y)p(z)), so its
log-ratio estimates the pointwise mutual information and its mean the mutual information.
As in the authors' code, these heads read the shared (x, y) features without training them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import Tensor

from wynerkit import CriticLoss, Distribution, StepContext, hookimpl
from wynerkit.hookspecs import Register
from wynerkit.sample import Variable
from wynerkit.training.estimates import accuracy, mutual_information
from wynerkit_plugins.shared.term_registration import register_terms


@dataclass(frozen=True)
class InformationTerm:
    """I(X,Y;Z) under one distribution, from a head reading (x, y, z)."""

    head: str
    distribution: Distribution
    multiplier: Literal["lambda_ci"] = "lambda_ci"
    critic_heads: dict[str, tuple[Variable, ...]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "critic_heads", {self.head: ("x", "y", "z")})

    def generator_loss(self, step: StepContext) -> Tensor:
        return mutual_information(step.log_ratio(self.head, self.distribution))

    def critic_loss(self, step: StepContext) -> CriticLoss:
        joint = step.log_ratio(self.head, self.distribution, detach_features=True)
        product = step.log_ratio(self.head, self.distribution, shuffle_z=True, detach_features=True)
        return CriticLoss(step.estimator.critic_loss(joint, product), accuracy(joint.detach(), product.detach()))


TERMS: dict[str, tuple[InformationTerm, str]] = {
    "I_joint": (InformationTerm("I_joint", "joint"), "I(X,Y;Z) under the joint model p->xy (times lambda_ci)."),
    "I_x2y": (InformationTerm("I_x2y", "x2y"), "I(X,Y;Z) under the conditional model p_x->y (times lambda_ci)."),
    "I_y2x": (InformationTerm("I_y2x", "y2x"), "I(X,Y;Z) under the conditional model p_y->x (times lambda_ci)."),
    "I_var": (InformationTerm("I_var", "variational"), "I(X,Y;Z) under the variational q_xy-> (times lambda_ci)."),
}


@hookimpl
def wynerkit_register_objective_terms(register: Register) -> None:
    """Register I_joint, I_x2y, I_y2x and I_var."""
    register_terms(register, TERMS)
