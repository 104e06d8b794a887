"""Reading a spec: YAML text with the line and column of every entry, plus ``--set`` overrides."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wynerkit.errors import UsageError

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SpecSource:
    """A spec's raw data, where each entry came from, and which entries ``--set`` replaced."""

    path: Path
    data: dict[str, Any]
    positions: dict[YamlPath, Position] = field(default_factory=dict)
    overrides: dict[YamlPath, str] = field(default_factory=dict)

    def where(self, path: YamlPath) -> str:
        """``FILE:LINE:COL`` of the deepest known entry on ``path``, or the ``--set`` that made it."""
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if prefix in self.overrides:
                return f"--set {self.overrides[prefix]}"
            if prefix in self.positions:
                pos = self.positions[prefix]
                return f"{self.path}:{pos.line}:{pos.column}"
        return f"{self.path}:1:1"


def read_spec_source(path: Path) -> SpecSource:
    """Parse a YAML spec file; a missing file or bad YAML is a UsageError naming the place."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (check the path of the spec)") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the spec: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1:1"
        raise UsageError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}:1:1: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1:1: a spec must be a mapping of fields (name, data, model, ...)")
    positions: dict[YamlPath, Position] = {}
    _record(node, (), positions)
    return SpecSource(path=path, data=data, positions=positions)


def _record(node: yaml.Node, path: YamlPath, out: dict[YamlPath, Position]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = Position(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _record(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = Position(item.start_mark.line + 1, item.start_mark.column + 1)
            _record(item, (*path, i), out)


def apply_overrides(source: SpecSource, assignments: list[str]) -> SpecSource:
    """A copy of ``source`` with each ``a.b.c=value`` applied (value parsed as YAML)."""
    data = copy.deepcopy(source.data)
    overrides = dict(source.overrides)
    for assignment in assignments:
        dotted, sep, text = assignment.partition("=")
        if not sep or not dotted.strip():
            raise UsageError(f"--set {assignment}: expected KEY=VALUE, e.g. --set train.epochs=3")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise UsageError(f"--set {assignment}: the value is not valid YAML: {exc}") from None
        path = _set(data, dotted.strip().split("."), value, assignment)
        overrides[path] = assignment
    return SpecSource(path=source.path, data=data, positions=source.positions, overrides=overrides)


def _set(data: dict[str, Any], keys: list[str], value: Any, assignment: str) -> YamlPath:
    node: Any = data
    path: list[str | int] = []
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise UsageError(
                    f"--set {assignment}: {'.'.join(keys[: i + 1])}: no item {key} in a list of {len(node)}"
                )
            index: str | int = int(key)
        elif isinstance(node, dict):
            index = key
        else:
            raise UsageError(
                f"--set {assignment}: {'.'.join(keys[:i])} is {type(node).__name__} {node!r}, not a mapping"
            )
        path.append(index)
        if last:
            node[index] = value
        else:
            if isinstance(node, dict) and node.get(key) is None:
                node[key] = {}
            node = node[index]
    return tuple(path)
