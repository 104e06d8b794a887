"""Turning pydantic validation errors into ``FILE:LINE:COL: dotted.path: message`` lines."""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from wynerkit.spec.source import SpecSource, YamlPath

_SCALARS = (str, int, float, bool, type(None))


def format_validation_error(error: ValidationError, source: SpecSource, model: type[BaseModel]) -> list[str]:
    """One line per problem, each naming where it is, what is wrong and how to fix it.

    Lines come in file order (line, then column), then those of ``--set`` overrides in the order given:
    pydantic reports in the order of the model's fields, which a reader of the file cannot follow.
    """
    located = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        path, container, at = _walk(model, loc)
        message = _message(err, loc, container, at)
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            shown = (*path, "name") if err["type"] == "union_tag_invalid" else path
        else:
            shown = path
        located.append((file_order(source, shown), f"{source.where(shown)}: {dotted(path)}: {message}"))
    return [line for _, line in sorted(located, key=lambda pair: pair[0])]


def file_order(source: SpecSource, path: YamlPath) -> tuple[int, int, int]:
    """Sort key of a problem at ``path``: file entries by (line, column), then ``--set`` overrides as given."""
    origin = source.origin(path)
    if isinstance(origin, str):
        return (1, list(source.overrides.values()).index(origin), 0)
    return (0, origin.line, origin.column)


def dotted(path: YamlPath) -> str:
    """``('evaluate', 0, 'name')`` -> ``evaluate[0].name``; the empty path is ``(root)``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[YamlPath, Any, Any]:
    """Follow a pydantic error location through the spec's types.

    Returns the location as a path into the YAML (union tags dropped), the type that contains
    the last element, and the type at the location itself.
    """
    path: list[str | int] = []
    container: Any = None
    current: Any = model
    for part in loc:
        if part == "[key]":
            break
        members = _component_members(current)
        if members and isinstance(part, str) and part in members:
            current = members[part]  # a union tag, not a YAML key
            continue
        container = current
        current = _child(current, part)
        path.append(part)
    return tuple(path), container, current


def _child(tp: Any, part: Any) -> Any:
    tp = _without_none(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field is not None else None
    origin = get_origin(tp)
    if origin in (list, tuple) and get_args(tp):
        return get_args(tp)[0]
    if origin is dict:
        return get_args(tp)[1]
    return None


def _without_none(tp: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None`` wrappers."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _without_none(args[0])
    return tp


def _component_members(tp: Any) -> dict[str, type[BaseModel]]:
    """Name -> variant for a union of component variants (or a single variant)."""
    tp = _without_none(tp)
    candidates = get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,)
    members = {}
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel) and hasattr(c, "component_kind"):
            (tag,) = get_args(c.model_fields["name"].annotation)
            members[tag] = c
    return members


def _message(err: dict[str, Any], loc: tuple[Any, ...], container: Any, at: Any) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        allowed = (
            sorted(container.model_fields) if isinstance(container, type) and issubclass(container, BaseModel) else []
        )
        return f"unknown field {loc[-1]!r}{_did_you_mean(str(loc[-1]), allowed)}; allowed fields: {', '.join(allowed)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        members = _component_members(at)
        what = next(iter(members.values())).component_kind if members else "component"
        names = ", ".join(sorted(members))
        if kind == "union_tag_not_found":
            return f"missing 'name': say which {what} to use; registered: {names}"
        tag = err["ctx"]["tag"]
        return f"unknown {what} {tag!r}{_did_you_mean(tag, sorted(members))}; registered: {names}"
    if loc and loc[-1] == "[key]":
        expected = [e.strip(" '") for e in str(err.get("ctx", {}).get("expected", "")).replace(" or ", ",").split(",")]
        expected = [e for e in expected if e]
        return f"unknown key {value!r}{_did_you_mean(str(value), expected)}; expected one of: {', '.join(expected)}"
    if kind == "missing":
        return "missing required field"
    message = err["msg"].removeprefix("Value error, ")
    if isinstance(value, _SCALARS) and not isinstance(value, dict):
        message += f" (got {value!r})"
    return message


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
