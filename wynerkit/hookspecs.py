"""The hooks a wynerkit plugin implements.

Each ``wynerkit_register_<kind>s`` hook receives a ``register`` callback; a plugin calls it once
per component it provides::

    register(name, factory, params=ParamsModel, summary="one line")

``factory(params, context, **arguments)`` builds the component from its validated params (an
instance of ``params``, a ``wynerkit.ComponentParams`` subclass) and a ``wynerkit.BuildContext``.
``summary`` defaults to the first line of the factory's docstring. Each hook's docstring below
says what its factory must return and which extra keyword arguments it receives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import typer

    from wynerkit.plugins import PluginHost

hookspec = pluggy.HookspecMarker("wynerkit")
hookimpl = pluggy.HookimplMarker("wynerkit")


class Register(Protocol):
    """The callback a ``wynerkit_register_*`` hook receives."""

    def __call__(self, name: str, factory: Any, *, params: type | None = None, summary: str | None = None) -> None: ...


@hookspec
def wynerkit_register_datasets(register: Register) -> None:
    """Register dataset providers.

    Factory: ``factory(params, context) -> wynerkit.DatasetProvider``.
    """


@hookspec
def wynerkit_register_modalities(register: Register) -> None:
    """Register modalities (the networks, loss and pictures of one kind of data).

    Factory: ``factory(params, context) -> wynerkit.Modality``.
    """


@hookspec
def wynerkit_register_estimators(register: Register) -> None:
    """Register density-ratio estimators.

    Factory: ``factory(params, context, *, x, y, latent, heads) -> wynerkit.RatioEstimator``
    where ``x`` and ``y`` are the two ``Modality`` objects, ``latent`` maps latent variable
    names to sizes and ``heads`` maps each critic head to the variables it reads.
    """


@hookspec
def wynerkit_register_objective_terms(register: Register) -> None:
    """Register objective terms; a spec weights them by name under ``objective.terms``.

    Factory: ``factory(params, context) -> wynerkit.ObjectiveTerm``. ``params`` come from the term's
    entry ``{weight: w, <params>}`` (the defaults when the entry is a bare weight); ``weight`` is
    the objective's, so a term's params model must not have a field of that name.
    """


@hookspec
def wynerkit_register_models(register: Register) -> None:
    """Register bimodal models (the variational Wyner model, baselines, ablations).

    Factory: ``factory(params, context) -> wynerkit.BimodalModel``; nested components (the two
    modalities) are built with ``context.build(params.x)``.
    """


@hookspec
def wynerkit_register_evaluators(register: Register) -> None:
    """Register evaluators that write metrics into a run's ``summary.json``.

    Factory: ``factory(params, context) -> wynerkit.Evaluator``.
    """


@hookspec
def wynerkit_register_data_sources(register: Register) -> None:
    """Register data sources: the files a dataset reads from ``<data root>/<name>/``.

    Factory: ``factory(params, context) -> wynerkit.datafiles.DataSource`` (usually a constant).
    ``wynerkit data info``, ``data verify`` and ``data download`` work from these descriptions.
    """


@hookspec
def wynerkit_register_commands(cli: typer.Typer, host: PluginHost) -> None:
    """Add commands or command groups to the ``wynerkit`` command line (a Typer app).

    ``host`` is the ``wynerkit.plugins.PluginHost`` the command line was built from: a command reads
    components from ``host.registry``. An implementation may leave ``host`` out of its signature.
    """
