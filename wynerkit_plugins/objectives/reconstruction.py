"""The plugin ``reconstruction-terms``: registers the reconstruction-consistency terms.

The terms themselves live in ``wynerkit_plugins/shared/reconstruction_terms.py``, which the
``reconstruction`` evaluator reads as well.
"""

from __future__ import annotations

from wynerkit import hookimpl
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.reconstruction_terms import TERMS
from wynerkit_plugins.shared.term_registration import register_terms


@hookimpl
def wynerkit_register_objective_terms(register: Register) -> None:
    """Register the reconstruction terms R_xy2x, R_xy2y, R_x2x, R_y2y, R_x2y, R_y2x and R_zuv."""
    register_terms(register, TERMS)
