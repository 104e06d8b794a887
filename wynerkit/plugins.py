"""The plugin host: finds plugins, calls their register hooks, and owns the registry.

Built-in plugins (in ``plugins/``) and third-party ones are found the same way, through the
``wynerkit`` entry-point group; built-ins load first, then the others by name. A plugin that
fails to import or to register is skipped as a whole (nothing it registered stays) and its error
is kept in ``PluginHost.errors``, so every other plugin still loads and works.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy
from pydantic import BaseModel

from wynerkit import hookspecs
from wynerkit.components import Component, NoParams, Registry, first_doc_line
from wynerkit.errors import DuplicateComponentError, PluginLoadError
from wynerkit.interfaces import KINDS

ENTRY_POINT_GROUP = "wynerkit"
BLOCK_ENV = "WYNERKIT_BLOCK_PLUGINS"
BUILTIN_DISTRIBUTION = "wynerkit"
REGISTER_HOOK = {
    "dataset": "wynerkit_register_datasets",
    "modality": "wynerkit_register_modalities",
    "estimator": "wynerkit_register_estimators",
    "objective_term": "wynerkit_register_objective_terms",
    "model": "wynerkit_register_models",
    "evaluator": "wynerkit_register_evaluators",
    "data_source": "wynerkit_register_data_sources",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class PluginInfo:
    """A plugin that loaded: its name (the entry point's), version and whether it is built in."""

    name: str
    version: str
    builtin: bool


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin comes from: a name, a loader returning the plugin object, and a version."""

    name: str
    load: Callable[[], object]
    version: str = "unknown"
    builtin: bool = False

    @classmethod
    def from_entry_point(cls, ep: EntryPoint) -> PluginSource:
        dist = ep.dist
        return cls(
            name=ep.name,
            load=ep.load,
            version=dist.version if dist is not None else "unknown",
            builtin=dist is not None and dist.name == BUILTIN_DISTRIBUTION,
        )

    @classmethod
    def from_object(cls, name: str, plugin: object, version: str = "0", builtin: bool = False) -> PluginSource:
        return cls(name=name, load=lambda: plugin, version=version, builtin=builtin)


def blocked_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


def discover(*, builtin_only: bool = False) -> list[PluginSource]:
    """Every plugin in the entry-point group, built-ins first, then the rest by name."""
    sources = [PluginSource.from_entry_point(ep) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    if builtin_only:
        sources = [s for s in sources if s.builtin]
    return sorted(sources, key=lambda s: (not s.builtin, s.name))


@dataclass
class PluginHost:
    """Loaded plugins, their registry, and the errors of the plugins that failed."""

    registry: Registry = field(default_factory=Registry)
    plugins: list[PluginInfo] = field(default_factory=list)
    errors: list[PluginLoadError] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    manager: pluggy.PluginManager = field(default_factory=lambda: _new_manager())

    @classmethod
    def load(cls, sources: Iterable[PluginSource], *, blocked: Iterable[str] | None = None) -> PluginHost:
        """Load plugins in order, skipping blocked names (default: ``$WYNERKIT_BLOCK_PLUGINS``)."""
        host = cls()
        block = blocked_from_env() if blocked is None else set(blocked)
        for source in sources:
            if source.name in block:
                host.blocked.append(source.name)
                continue
            host.add(source)
        return host

    def add(self, source: PluginSource) -> None:
        """Load one plugin; on any failure record a PluginLoadError naming it and keep going."""
        try:
            plugin = source.load()
        except Exception as exc:  # noqa: BLE001 - any import failure must not break other plugins
            self._fail(source, f"failed to import: {type(exc).__name__}: {exc}")
            return
        try:
            self.manager.register(plugin, name=source.name)
            self.manager.check_pending()  # a misspelled wynerkit_* hook is an error, not a no-op
        except Exception as exc:  # noqa: BLE001 - pluggy validation errors, duplicate names
            if self.manager.get_plugin(source.name) is not None:
                self.manager.unregister(name=source.name)
            self._fail(source, f"is not a valid plugin: {type(exc).__name__}: {exc}")
            return
        try:
            staged = self._collect(source)
            self._commit(staged)
        except Exception as exc:  # noqa: BLE001 - a plugin's own register code may raise anything
            self.manager.unregister(name=source.name)
            detail = str(exc) if isinstance(exc, DuplicateComponentError) else f"{type(exc).__name__}: {exc}"
            self._fail(source, f"failed to register its components: {detail}")
            return
        self.plugins.append(PluginInfo(source.name, source.version, source.builtin))

    def add_commands(self, cli: Any) -> None:
        """Let every plugin add CLI commands; a plugin that raises is reported and skipped."""
        for impl in self.manager.hook.wynerkit_register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:  # noqa: BLE001
                self.errors.append(
                    PluginLoadError(f"plugin {impl.plugin_name!r} failed to add commands: {type(exc).__name__}: {exc}")
                )

    def components_of(self, plugin: str) -> list[Component]:
        return [c for c in self.registry if c.plugin == plugin]

    def _collect(self, source: PluginSource) -> list[Component]:
        staged: list[Component] = []
        for kind in KINDS:
            hook = getattr(self.manager.hook, REGISTER_HOOK[kind])
            for impl in hook.get_hookimpls():
                if impl.plugin_name == source.name:
                    impl.function(register=_Registrar(kind, source, staged))
        return staged

    def _commit(self, staged: list[Component]) -> None:
        trial = Registry()
        for component in list(self.registry) + staged:
            trial.add(component)  # raises DuplicateComponentError naming both plugins
        self.registry = trial

    def _fail(self, source: PluginSource, what: str) -> None:
        self.errors.append(
            PluginLoadError(f"plugin {source.name!r} {what} (skipped; silence this with {BLOCK_ENV}={source.name})")
        )


@dataclass
class _Registrar:
    """The ``register`` callback handed to one plugin's hook for one kind."""

    kind: str
    source: PluginSource
    staged: list[Component]

    def __call__(
        self, name: str, factory: Callable[..., Any], *, params: type | None = None, summary: str | None = None
    ) -> None:
        where = f"{self.kind} {name!r}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}: a component name must match {_NAME.pattern}")
        if not callable(factory):
            raise TypeError(f"{where}: factory must be callable, got {type(factory).__name__}")
        params = NoParams if params is None else params
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise TypeError(f"{where}: params must be a pydantic model class (subclass wynerkit.ComponentParams)")
        if params.model_config.get("extra") != "forbid":
            raise TypeError(f"{where}: params model {params.__name__} must forbid extra fields (extra='forbid')")
        if "name" in params.model_fields:
            raise TypeError(f"{where}: params model {params.__name__} must not define 'name' (the spec uses it)")
        self.staged.append(
            Component(
                kind=self.kind,
                name=name,
                factory=factory,
                params=params,
                summary=summary if summary is not None else first_doc_line(factory),
                plugin=self.source.name,
                version=self.source.version,
            )
        )


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("wynerkit")
    manager.add_hookspecs(hookspecs)
    return manager


_current: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host, loaded from entry points on first use."""
    global _current
    if _current is None:
        _current = PluginHost.load(discover())
    return _current


def set_host(host: PluginHost | None) -> None:
    """Replace the process-wide host (tests use this to control the plugin set)."""
    global _current
    _current = host
