"""Grid and overlay values as text: one-line YAML, filesystem-safe name parts, values ``sweep.json`` can store."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import yaml

from wynerkit.errors import UsageError
from wynerkit.sweeps.layout import MANIFEST

T = TypeVar("T")
MAX_PART = 40
"""Longest assignment text kept verbatim in a cell name; longer (or unsafe) ones are shortened and hashed."""

_SAFE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def short_digest(text: str) -> str:
    """The first 8 hex digits of the SHA-256 of ``text``: a short, stable name for it."""
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def value_text(value: Any) -> str:
    """A value as one line of YAML, the text that ``--set`` and ``--grid`` read back as the same value."""
    lines = yaml.safe_dump(value, default_flow_style=True, width=2**31 - 1, sort_keys=False).splitlines()
    lines = [line for line in lines if line != "..."]
    # A string with line breaks dumps over several lines, which joining would change: JSON (which YAML
    # reads) escapes them on one line.
    return lines[0] if len(lines) == 1 else json.dumps(value, ensure_ascii=False)


def name_part(text: str) -> str:
    """``text`` when it is a short run of filesystem-safe characters, else a readable stub + ``~`` + its hash.

    Verbatim parts never contain ``~`` or ``=``, so distinct texts never give the same part.
    """
    if _SAFE.fullmatch(text) and len(text) <= MAX_PART:
        return text
    stub = _UNSAFE.sub("_", text).strip("._-")[:24]
    return f"{stub}~{short_digest(text)}"


def check_storable(value: Any, what: str) -> None:
    """``value`` must survive sweep.json: YAML's dates, binary and NaN do not."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise UsageError(
            f"{what}: {value_text(value)} cannot be recorded in {MANIFEST}; use numbers, strings, booleans, "
            "null, lists and mappings (quote dates)"
        ) from None


def parse_all(
    texts: Sequence[Any], parse: Callable[[Any], T], key: Callable[[T], str], duplicate: Callable[[str], str]
) -> list[T]:
    """Parse every item, collecting every item's problems and one line per key two items share."""
    parsed, problems = [], []
    for text in texts:
        try:
            parsed.append(parse(text))
        except UsageError as exc:
            problems += exc.problems
    keys = [key(item) for item in parsed]
    problems += [duplicate(k) for k in sorted({k for k in keys if keys.count(k) > 1})]
    if problems:
        raise UsageError(problems)
    return parsed
