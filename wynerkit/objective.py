"""The training objective: weighted terms for the generator, and the critic objective derived from it.

The generator minimises sum_t w_t * m_t * L_t, where w_t is the term's weight in the spec and m_t the
objective-wide multiplier the term declares (``lambda_ci`` for common-information terms,
``lambda_rec`` for reconstruction terms, 1 otherwise). The critic minimises the critic losses of
every term the generator uses with a non-zero weight that has critic heads, unless the spec lists
``critic_terms`` explicitly (the paper's retrieval setting trains D_joint's critic without using it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from wynerkit.components import BuildContext, NoParams
from wynerkit.errors import UsageError
from wynerkit.interfaces import ObjectiveTerm, StepContext
from wynerkit.sample import Variable


@dataclass(frozen=True)
class WeightedTerm:
    name: str
    term: ObjectiveTerm
    weight: float
    """The effective weight: the spec's weight times the term's multiplier."""


class Objective:
    """The generator's weighted terms and the critic's terms, with the critic heads they need."""

    def __init__(self, generator_terms: list[WeightedTerm], critic_terms: Mapping[str, ObjectiveTerm]) -> None:
        self.generator_terms = [t for t in generator_terms if t.weight != 0.0]
        self.critic_terms = dict(critic_terms)
        if not self.generator_terms:
            raise UsageError("objective.terms: every weight is 0 (after lambda_ci / lambda_rec): nothing to train")
        self.heads: dict[str, tuple[Variable, ...]] = {}
        for name, term in [(t.name, t.term) for t in self.generator_terms] + list(self.critic_terms.items()):
            for head, variables in term.critic_heads.items():
                known = self.heads.setdefault(head, tuple(variables))
                if known != tuple(variables):
                    raise UsageError(
                        f"objective: term {name}'s critic head {head!r} reads {variables}, another term {known}"
                    )

    def generator_loss(self, step: StepContext) -> tuple[Tensor, dict[str, Tensor]]:
        """The weighted total and each term's unweighted value."""
        values = {t.name: t.term.generator_loss(step) for t in self.generator_terms}
        total = sum(t.weight * values[t.name] for t in self.generator_terms)
        return total, values

    def critic_loss(self, step: StepContext) -> tuple[Tensor | None, dict[str, Tensor], dict[str, Tensor]]:
        """The summed critic loss (None without critics), each term's critic loss and accuracy."""
        losses: dict[str, Tensor] = {}
        accuracies: dict[str, Tensor] = {}
        for name, term in self.critic_terms.items():
            result = term.critic_loss(step)
            if result is not None:
                losses[name], accuracies[name] = result
        total = sum(losses.values()) if losses else None
        return total, losses, accuracies


def build_objective(spec: Any, context: BuildContext) -> Objective:
    """The objective of a validated ``objective`` spec section."""
    multipliers = {None: 1.0, "lambda_ci": spec.lambda_ci, "lambda_rec": spec.lambda_rec}
    names = list(spec.terms) + [n for n in spec.critic_terms or [] if n not in spec.terms]
    terms = {name: context.registry.get("objective_term", name).factory(NoParams(), context) for name in names}
    weighted = [
        WeightedTerm(name, terms[name], weight * multipliers[getattr(terms[name], "multiplier", None)])
        for name, weight in spec.terms.items()
    ]
    if spec.critic_terms is None:
        critic = {t.name: t.term for t in weighted if t.weight != 0.0 and t.term.critic_heads}
    else:
        critic = {name: terms[name] for name in spec.critic_terms}
    return Objective(weighted, critic)
