"""Distribution-matching terms: symmetric KL divergences estimated by density-ratio critics.

``D_model`` compares the variational distribution q_xy-> with a model distribution over all of
(x, y, z, u, v); ``D_cross`` compares the two conditional models; ``M_x2y`` / ``M_y2x`` compare
the aggregated conditional code q(z|x) (or q(z|y)) with the prior p(z), whose samples are the z
of the joint model (paper section 2, "Training objectives").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from wynerkit import CriticLoss, Distribution, StepContext, hookimpl
from wynerkit.hookspecs import Register
from wynerkit.sample import Variable
from wynerkit.training.estimates import accuracy, sym_kl
from wynerkit_plugins.shared.term_registration import register_terms

ALL: tuple[Variable, ...] = ("x", "y", "z", "u", "v")


@dataclass(frozen=True)
class DivergenceTerm:
    """D_sym(p, q) over some variables, from one critic head trained with p positive."""

    head: str
    p: Distribution
    q: Distribution
    variables: tuple[Variable, ...] = ALL
    multiplier: None = None
    critic_heads: dict[str, tuple[Variable, ...]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "critic_heads", {self.head: self.variables})

    def _log_ratios(self, step: StepContext) -> tuple[Tensor, Tensor]:
        return step.log_ratio(self.head, self.p), step.log_ratio(self.head, self.q)

    def generator_loss(self, step: StepContext) -> Tensor:
        return sym_kl(*self._log_ratios(step))

    def critic_loss(self, step: StepContext) -> CriticLoss:
        on_p, on_q = self._log_ratios(step)
        return CriticLoss(step.estimator.critic_loss(on_p, on_q), accuracy(on_p.detach(), on_q.detach()))


TERMS: dict[str, tuple[DivergenceTerm, str]] = {
    "D_joint": (DivergenceTerm("D_joint", "variational", "joint"), "D_sym(q_xy->, p->xy) over (x, y, z, u, v)."),
    "D_x2y": (DivergenceTerm("D_x2y", "variational", "x2y"), "D_sym(q_xy->, p_x->y) over (x, y, z, u, v)."),
    "D_y2x": (DivergenceTerm("D_y2x", "variational", "y2x"), "D_sym(q_xy->, p_y->x) over (x, y, z, u, v)."),
    "D_cross": (DivergenceTerm("D_cross", "x2y", "y2x"), "D_sym(p_x->y, p_y->x) over (x, y, z, u, v): cross matching."),
    "M_x2y": (DivergenceTerm("M_x2y", "x2y", "joint", ("z",)), "D_sym(p_x->y(z), p(z)): q(z|x) matches the prior."),
    "M_y2x": (DivergenceTerm("M_y2x", "y2x", "joint", ("z",)), "D_sym(p_y->x(z), p(z)): q(z|y) matches the prior."),
}


@hookimpl
def wynerkit_register_objective_terms(register: Register) -> None:
    """Register D_joint, D_x2y, D_y2x, D_cross, M_x2y and M_y2x."""
    register_terms(register, TERMS)
