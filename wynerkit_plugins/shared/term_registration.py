"""Registering the built-in terms that take no params: each name maps to one shared term object.

A term with params (``IIAE``) registers its own factory and params model instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from wynerkit import BuildContext, NoParams, ObjectiveTerm
from wynerkit.hookspecs import Register


def constant_factory(term: ObjectiveTerm) -> Callable[[NoParams, BuildContext], ObjectiveTerm]:
    """A factory returning ``term``, which takes no params (its weight lives in the objective)."""

    def make(params: NoParams, context: BuildContext) -> ObjectiveTerm:
        del params, context
        return term

    return make


def register_terms(register: Register, terms: Mapping[str, tuple[ObjectiveTerm, str]]) -> None:
    """Register every ``name: (term, summary)`` entry as an objective term."""
    for name, (term, summary) in terms.items():
        register(name, constant_factory(term), params=NoParams, summary=summary)
