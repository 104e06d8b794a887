"""Reading a spec: YAML text with the line and column of every entry, plus ``--set`` overrides."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wynerkit.errors import UsageError

YamlPath = tuple[str | int, ...]

MAX_SPEC_BYTES = 256 * 1024
MAX_SPEC_NODES = 10_000
MAX_SPEC_DEPTH = 32
"""Bounds of a spec (or a ``--set`` value), far above any real spec (the shipped ones: < 2 KB, < 150
nodes, depth < 6), so a hostile file (an alias bomb, deep nesting) is refused in milliseconds."""


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
        origin = self.origin(path)
        return f"--set {origin}" if isinstance(origin, str) else f"{self.path}:{origin.line}:{origin.column}"

    def origin(self, path: YamlPath) -> Position | str:
        """The position of the deepest known entry on ``path``, or the ``--set`` assignment that made it."""
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if prefix in self.overrides:
                return self.overrides[prefix]
            if prefix in self.positions:
                return self.positions[prefix]
        return Position(1, 1)


def read_spec_source(path: Path) -> SpecSource:
    """Parse a YAML spec file; a missing file or bad YAML is a UsageError naming the place."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)  # never more, whatever the file (or device) holds
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file (check the path of the spec)") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise UsageError(f"{path}: cannot read the spec: {exc}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise UsageError(f"{path}: a spec is at most {MAX_SPEC_BYTES // 1024} KiB; this file is larger")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: cannot read the spec: {exc}") from None
    try:
        check_yaml_bounds(text, str(path))
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{_position(mark)}" if mark else f"{path}:1:1"
        raise UsageError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}:1:1: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}:1:1: a spec must be a mapping of fields (name, data, model, ...)")
    positions: dict[YamlPath, Position] = {}
    _record(node, (), positions)
    return SpecSource(path=path, data=data, positions=positions)


@dataclass
class _OpenCollection:
    anchor: str | None
    nodes_before: int
    deepest_child: int = 0


def check_yaml_bounds(text: str, where: str, *, with_position: bool = True) -> None:
    """Refuse YAML whose tree, every alias expanded, exceeds ``MAX_SPEC_NODES`` or ``MAX_SPEC_DEPTH``.

    It walks the parser's events: PyYAML makes them without recursion and without expanding
    aliases, and each anchor's expanded size and depth are added at every alias to it, so the check
    takes time linear in the text however far the aliases would expand. A problem is a UsageError
    naming ``where`` (and the line and column, ``with_position``); malformed YAML is left to the
    caller's parse, which reports it with its position.
    """
    anchored: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, depth) of its expanded subtree
    open_collections: list[_OpenCollection] = []
    nodes = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionEndEvent):
            done = open_collections.pop()
            subtree = (nodes - done.nodes_before, 1 + done.deepest_child)
            if done.anchor is not None:
                anchored[done.anchor] = subtree
            if open_collections:
                open_collections[-1].deepest_child = max(open_collections[-1].deepest_child, subtree[1])
            continue
        if not isinstance(event, (yaml.AliasEvent, yaml.ScalarEvent, yaml.CollectionStartEvent)):
            continue
        at = f"{where}:{_position(event.start_mark)}" if with_position else where
        added, depth = 1, 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchored and any(c.anchor == event.anchor for c in open_collections):
                raise UsageError(f"{at}: alias *{event.anchor} is inside its own anchor; a spec cannot contain itself")
            added, depth = anchored.get(event.anchor, (1, 1))  # an unknown anchor: the parse reports it
        nodes += added
        _refuse_unbounded(nodes, len(open_collections) + depth, at)
        if isinstance(event, yaml.CollectionStartEvent):
            anchored.pop(event.anchor, None)  # a reused anchor name means this collection from here on
            open_collections.append(_OpenCollection(event.anchor, nodes - 1))
            continue
        if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
            anchored[event.anchor] = (1, 1)
        if open_collections:
            open_collections[-1].deepest_child = max(open_collections[-1].deepest_child, depth)


def _position(mark: yaml.Mark) -> str:
    return f"{mark.line + 1}:{mark.column + 1}"


def _refuse_unbounded(nodes: int, levels: int, at: str) -> None:
    if nodes > MAX_SPEC_NODES:
        raise UsageError(
            f"{at}: the YAML expands to more than {MAX_SPEC_NODES} nodes (an alias counts every node of its "
            "anchor again); a spec is bounded: write the entries out instead of aliasing them"
        )
    if levels > MAX_SPEC_DEPTH:
        raise UsageError(f"{at}: the YAML nests deeper than {MAX_SPEC_DEPTH} levels; a spec is bounded")


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
            check_yaml_bounds(text, f"--set {assignment}", with_position=False)
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
