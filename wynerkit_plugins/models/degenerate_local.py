"""The paper's ablation ``wyner-degenerate-local``: local encoders q(u|x), q(v|y) that ignore z.

Everything else is the variational Wyner model (same params, same objective terms). The paper
reports it on Sketchy (P@100 0.670, mAP 0.591 against 0.703 / 0.629 for the full model), showing
that conditioning the local code on the common code helps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wynerkit import BuildContext, hookimpl
from wynerkit_plugins.shared.wyner_model import (
    VariationalWyner,
    VariationalWynerParams,
    build_variational_wyner,
)

if TYPE_CHECKING:
    from wynerkit.hookspecs import Register


def make_degenerate_local(params: VariationalWynerParams, context: BuildContext) -> VariationalWyner:
    """The variational Wyner model with degenerate local encoders q(u|x), q(v|y) (paper ablation)."""
    return build_variational_wyner(params, context, local_reads_z=False)


@hookimpl
def wynerkit_register_models(register: Register) -> None:
    """Register ``wyner-degenerate-local``."""
    register("wyner-degenerate-local", make_degenerate_local, params=VariationalWynerParams)
