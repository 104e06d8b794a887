"""Registered components: what a plugin registers, and the registry that refuses duplicates.

A component is a named factory of one kind (dataset, modality, ...) with a pydantic params
model. A spec entry ``{name: <component name>, ...params}`` is validated by that params model and
handed to the factory as ``factory(params, context, **kind_specific_arguments)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from pydantic import BaseModel, ConfigDict

from wynerkit.data_root import resolve_data_root
from wynerkit.errors import DuplicateComponentError, UnknownComponentError
from wynerkit.interfaces import KINDS


@runtime_checkable
class ComponentSpec(Protocol):
    """A validated spec entry: the component's params plus its ``name`` and kind."""

    name: str
    component_kind: ClassVar[str]


SPEC_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
"""Every spec model's config: no unknown fields, immutable, and finite numbers only (an inf or NaN
learning rate, weight or noise level validates into a run that crashes or learns nothing)."""


class ComponentParams(BaseModel):
    """Base class of every component's params model: strict, immutable, no unknown fields, finite numbers."""

    model_config = SPEC_MODEL_CONFIG


class NoParams(ComponentParams):
    """The params model of a component that takes no parameters."""


@dataclass(frozen=True)
class Ref:
    """Marks a params field as a nested component of another kind.

    ``x: Annotated[ComponentSpec, Ref("modality")]`` makes the spec validate ``x`` against every
    registered modality, exactly like a top-level component; the factory receives the validated
    spec and builds it with ``context.build(params.x)``.
    """

    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Ref kind must be one of {KINDS}, not {self.kind!r}")


@dataclass(frozen=True)
class Component:
    """One registered part: its kind, name, params model, factory and owning plugin."""

    kind: str
    name: str
    factory: Callable[..., Any]
    params: type[ComponentParams]
    summary: str
    plugin: str
    version: str

    def describe(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "plugin": self.plugin,
            "version": self.version,
            "summary": self.summary,
        }


def first_doc_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


@dataclass
class Registry:
    """Every component the loaded plugins registered, by kind and name."""

    _by_kind: dict[str, dict[str, Component]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def add(self, component: Component) -> None:
        existing = self._by_kind[component.kind].get(component.name)
        if existing is not None:
            raise DuplicateComponentError(
                f"{component.kind} {component.name!r} is registered twice: by plugin "
                f"{existing.plugin!r} and by plugin {component.plugin!r}; rename one, or block "
                f"one with WYNERKIT_BLOCK_PLUGINS={component.plugin}"
            )
        self._by_kind[component.kind][component.name] = component

    def get(self, kind: str, name: str) -> Component:
        try:
            return self._by_kind[kind][name]
        except KeyError:
            raise UnknownComponentError(
                f"unknown {kind} {name!r}; registered: {', '.join(self.names(kind)) or '(none)'}"
            ) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def of_kind(self, kind: str) -> list[Component]:
        return [self._by_kind[kind][n] for n in self.names(kind)]

    def __iter__(self) -> Iterator[Component]:
        for kind in KINDS:
            yield from self.of_kind(kind)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_kind.values())


@dataclass(frozen=True)
class BuildContext:
    """What every factory receives besides its params: seed, data root, device, and a builder.

    ``build`` turns a nested component spec (a field marked with ``Ref``) into its object.
    """

    registry: Registry
    seed: int = 0
    data_root: Path = field(default_factory=resolve_data_root)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def build(self, spec: ComponentSpec, **kwargs: Any) -> Any:
        """Build the component a validated spec entry names, passing kind-specific arguments."""
        component = self.registry.get(spec.component_kind, spec.name)
        return component.factory(spec, self, **kwargs)
