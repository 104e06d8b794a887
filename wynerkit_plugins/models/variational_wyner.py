"""The built-in model ``variational-wyner`` (paper section 2, Table 1).

Its networks live in ``wynerkit_plugins/shared/wyner_model.py``, which the ablation
``wyner-degenerate-local`` and the baseline ``iiae`` build on as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wynerkit import BuildContext, hookimpl
from wynerkit_plugins.shared.wyner_model import VariationalWyner, VariationalWynerParams, build_variational_wyner

if TYPE_CHECKING:
    from wynerkit.hookspecs import Register


def make_variational_wyner(params: VariationalWynerParams, context: BuildContext) -> VariationalWyner:
    """The variational Wyner model: joint, conditional and local encoders with deterministic decoders."""
    return build_variational_wyner(params, context)


@hookimpl
def wynerkit_register_models(register: Register) -> None:
    """Register ``variational-wyner``; its summary is the factory's first docstring line."""
    register("variational-wyner", make_variational_wyner, params=VariationalWynerParams)
