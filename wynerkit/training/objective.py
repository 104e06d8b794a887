"""The training objective: weighted terms for the generator, and the critic objective derived from it.

The generator minimises sum_t w_t * m_t * L_t, where w_t is the term's weight in the spec and m_t the
objective-wide multiplier the term declares (``lambda_ci`` for common-information terms,
``lambda_rec`` for reconstruction terms, 1 otherwise). The critic minimises the critic losses of
every term the generator uses with a non-zero weight that has critic heads, unless the spec lists
``critic_terms`` explicitly (the paper's retrieval setting trains D_joint's critic without using it).
A term's entry is its weight, or ``{weight: w, <params>}`` for a term that takes params (IIAE's loss
weights); its factory receives those params, or the defaults when the entry is a bare weight.

The validation loss that picks the best checkpoint is the cross-reconstruction terms' own value
(``VALIDATION_TERMS``), so it measures exactly what those terms train.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from torch import Tensor

from wynerkit.components import BuildContext
from wynerkit.errors import UnknownComponentError, UsageError
from wynerkit.interfaces import ObjectiveTerm, StepContext
from wynerkit.sample import Variable

VALIDATION_TERMS = ("R_x2y", "R_y2x")
"""``valid.loss``: y against y(z, v) with z from q(z|x), and x against x(z, u) with z from q(z|y)."""


@dataclass(frozen=True)
class WeightedTerm:
    name: str
    term: ObjectiveTerm
    weight: float
    """The effective weight: the spec's weight times the term's multiplier."""


class Objective:
    """The generator's weighted terms, the critic's terms with the critic heads they need, and the
    terms whose sum is the validation loss."""

    def __init__(
        self,
        generator_terms: list[WeightedTerm],
        critic_terms: Mapping[str, ObjectiveTerm],
        validation_terms: Mapping[str, ObjectiveTerm],
    ) -> None:
        self.generator_terms = [t for t in generator_terms if t.weight != 0.0]
        self.critic_terms = dict(critic_terms)
        self.validation_terms = dict(validation_terms)
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

    def validation_loss(self, step: StepContext) -> Tensor:
        """The sum of the validation terms' (unweighted) values on the step's batch: a mean over its items."""
        return sum(term.generator_loss(step) for term in self.validation_terms.values())


def build_objective(spec: Any, context: BuildContext) -> Objective:
    """The objective of a validated ``objective`` spec section."""
    multipliers = {None: 1.0, "lambda_ci": spec.lambda_ci, "lambda_rec": spec.lambda_rec}
    names = list(spec.terms) + [n for n in spec.critic_terms or [] if n not in spec.terms]
    terms = {name: _build_term(name, spec.terms.get(name), context) for name in names}
    weighted = [
        WeightedTerm(name, terms[name], term_weight(entry) * multipliers[terms[name].multiplier])
        for name, entry in spec.terms.items()
    ]
    if spec.critic_terms is None:
        critic = {t.name: t.term for t in weighted if t.weight != 0.0 and t.term.critic_heads}
    else:
        critic = {name: terms[name] for name in spec.critic_terms}
    return Objective(weighted, critic, _validation_terms(terms, context))


def term_weight(entry: float | BaseModel) -> float:
    """The spec's weight of a term: the entry itself, or the ``weight`` of ``{weight: w, <params>}``."""
    return entry.weight if isinstance(entry, BaseModel) else float(entry)  # type: ignore[attr-defined]


def _build_term(name: str, entry: float | BaseModel | None, context: BuildContext) -> ObjectiveTerm:
    """The term ``name`` from its params: those of ``{weight: w, <params>}``, else the defaults."""
    component = context.registry.get("objective_term", name)
    if isinstance(entry, BaseModel):
        return component.factory(entry, context)
    try:
        params = component.params()
    except ValidationError:
        raise UsageError(
            f"objective: term {name} needs params; give them in objective.terms as {{{name}: {{weight: w, ...}}}}"
        ) from None
    return component.factory(params, context)


def _validation_terms(built: Mapping[str, ObjectiveTerm], context: BuildContext) -> dict[str, ObjectiveTerm]:
    """``VALIDATION_TERMS``: the spec's own when it weights them, else built with their defaults."""
    try:
        return {name: built.get(name) or _build_term(name, None, context) for name in VALIDATION_TERMS}
    except UnknownComponentError:
        raise UsageError(
            f"objective: valid.loss is {' + '.join(VALIDATION_TERMS)}, but a plugin providing them is not loaded; "
            "unblock the reconstruction-terms plugin"
        ) from None
