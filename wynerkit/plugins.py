"""The plugin host: finds plugins, calls their register hooks, and owns the registry.

Built-in plugins (in ``wynerkit_plugins/``) and third-party ones are found the same way, through the
``wynerkit`` entry-point group; built-ins load first, then the others by name. A plugin that
fails to import or to register is skipped as a whole (nothing it registered stays) and its error
is kept in ``PluginHost.errors``, so every other plugin still loads and works. That holds for any
exception a plugin raises, ``SystemExit`` included; only ``KeyboardInterrupt`` stops the host.

A plugin is identified by its distribution and entry-point name (``acme-wynerkit:retrieval``), so
a third-party entry point named like a built-in plugin never replaces it: the plugin loaded first
(built-ins always are) keeps the name and the other is skipped with an error naming both packages.
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
UNKNOWN_DISTRIBUTION = "unknown"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def normalized_distribution(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Acme_Wynerkit`` -> ``acme-wynerkit``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def plugin_key(distribution: str, name: str) -> str:
    """What identifies one plugin among all installed ones: ``distribution:entry-point name``."""
    return f"{normalized_distribution(distribution)}:{name}"


@dataclass(frozen=True)
class PluginInfo:
    """A plugin that loaded: its name (the entry point's), version, whether it is built in, its package."""

    name: str
    version: str
    builtin: bool
    distribution: str = UNKNOWN_DISTRIBUTION

    @property
    def key(self) -> str:
        return plugin_key(self.distribution, self.name)


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin comes from: a name, a loader returning the plugin object, a version, its package."""

    name: str
    load: Callable[[], object]
    version: str = "unknown"
    builtin: bool = False
    distribution: str = UNKNOWN_DISTRIBUTION

    @property
    def key(self) -> str:
        return plugin_key(self.distribution, self.name)

    @classmethod
    def from_entry_point(cls, ep: EntryPoint) -> PluginSource:
        dist = ep.dist
        distribution = dist.name if dist is not None else UNKNOWN_DISTRIBUTION
        return cls(
            name=ep.name,
            load=ep.load,
            version=dist.version if dist is not None else "unknown",
            builtin=normalized_distribution(distribution) == BUILTIN_DISTRIBUTION,
            distribution=distribution,
        )

    @classmethod
    def from_object(
        cls, name: str, plugin: object, version: str = "0", builtin: bool = False, distribution: str | None = None
    ) -> PluginSource:
        if distribution is None:
            distribution = BUILTIN_DISTRIBUTION if builtin else UNKNOWN_DISTRIBUTION
        return cls(name=name, load=lambda: plugin, version=version, builtin=builtin, distribution=distribution)


def blocked_from_env() -> set[str]:
    """``$WYNERKIT_BLOCK_PLUGINS``: comma-separated entry-point names, or ``distribution:name`` for one plugin."""
    return {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}


def blocking_entry(source: PluginSource, block: set[str]) -> str | None:
    """The entry of ``block`` that names ``source`` (its name, or its ``distribution:name``), else None."""
    if source.name in block:
        return source.name
    keys = {plugin_key(*entry.split(":", 1)) for entry in block if ":" in entry}
    return source.key if source.key in keys else None


def discover(*, builtin_only: bool = False) -> list[PluginSource]:
    """Every plugin in the entry-point group, built-ins first, then the rest by name (and package)."""
    sources = [PluginSource.from_entry_point(ep) for ep in entry_points(group=ENTRY_POINT_GROUP)]
    if builtin_only:
        sources = [s for s in sources if s.builtin]
    return sorted(sources, key=lambda s: (not s.builtin, s.name, s.key))


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
            entry = blocking_entry(source, block)
            if entry is not None:
                host.blocked.append(entry)
                continue
            host.add(source)
        return host

    def add(self, source: PluginSource) -> None:
        """Load one plugin; on any failure record a PluginLoadError naming it and keep going."""
        holder = next((p for p in self.plugins if p.name == source.name), None)
        if holder is not None:
            self._refuse_clash(source, holder)
            return
        plugin: object = None
        failure = "failed to import"
        try:
            plugin = source.load()
            failure = "is not a valid plugin"
            self.manager.register(plugin, name=source.key)
            self.manager.check_pending()  # a misspelled wynerkit_* hook is an error, not a no-op
            failure = "failed to register its components"
            self._commit(self._collect(source))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: no plugin may end the host
            if plugin is not None and self.manager.get_plugin(source.key) is plugin:
                self.manager.unregister(name=source.key)
            detail = str(exc) if isinstance(exc, DuplicateComponentError) else described(exc)
            self._fail(source, f"{failure}: {detail}")
            return
        self.plugins.append(PluginInfo(source.name, source.version, source.builtin, source.distribution))

    def add_commands(self, cli: Any) -> None:
        """Let every plugin add CLI commands; a plugin that raises is reported and skipped."""
        names = {p.key: p.name for p in self.plugins}
        offered = {"cli": cli, "host": self}
        for impl in self.manager.hook.wynerkit_register_commands.get_hookimpls():
            try:
                impl.function(**{arg: offered[arg] for arg in impl.argnames})  # as pluggy: only the args it names
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit too: no plugin may end the host
                name = names.get(impl.plugin_name, impl.plugin_name)
                self.errors.append(PluginLoadError(f"plugin {name!r} failed to add commands: {described(exc)}"))

    def components_of(self, plugin: str) -> list[Component]:
        return [c for c in self.registry if c.plugin == plugin]

    def _collect(self, source: PluginSource) -> list[Component]:
        staged: list[Component] = []
        for kind in KINDS:
            hook = getattr(self.manager.hook, REGISTER_HOOK[kind])
            for impl in hook.get_hookimpls():
                if impl.plugin_name == source.key:
                    impl.function(register=_Registrar(kind, source, staged))
        return staged

    def _commit(self, staged: list[Component]) -> None:
        trial = Registry()
        for component in list(self.registry) + staged:
            trial.add(component)  # raises DuplicateComponentError naming both plugins
        self.registry = trial

    def _refuse_clash(self, source: PluginSource, holder: PluginInfo) -> None:
        """Two packages' entry points share a name: the plugin loaded first (a built-in, if any) keeps it."""
        which = "the built-in plugin" if holder.builtin else "plugin"
        self._fail(
            source,
            f"of package {normalized_distribution(source.distribution)!r} has the same name as {which} "
            f"{holder.name!r} of package {normalized_distribution(holder.distribution)!r}, which is kept; "
            f"to use this one instead, set {BLOCK_ENV}={holder.key}",
            block_as=source.key,
        )

    def _fail(self, source: PluginSource, what: str, block_as: str | None = None) -> None:
        block = block_as or source.name
        self.errors.append(
            PluginLoadError(f"plugin {source.name!r} {what} (skipped; silence this with {BLOCK_ENV}={block})")
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


def described(exc: BaseException) -> str:
    """``SystemExit: 3``; just the type when the exception has no message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
