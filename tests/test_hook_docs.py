"""Every hook in ``wynerkit.hookspecs`` is documented in docs/plugins.md with its exact signature.

Plugin authors implement hooks from the docs, so a hook added (or changed) without updating the
"Hook reference" must fail here rather than surface as a plugin that silently registers nothing.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wynerkit import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
SPEC_MARKER = "wynerkit_spec"  # the attribute pluggy.HookspecMarker("wynerkit") sets on each hookspec


def hookspec_functions() -> dict[str, Callable[..., Any]]:
    return {name: obj for name, obj in vars(hookspecs).items() if callable(obj) and hasattr(obj, SPEC_MARKER)}


def rendered_signature(name: str, function: Callable[..., Any]) -> str:
    """``name(arg: Type) -> Ret`` as the docs write it (annotations are strings, so drop quotes)."""
    return f"{name}{inspect.signature(function)}".replace("'", "")


def hook_reference() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("## Hook reference")
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


HOOKS = hookspec_functions()


def test_hookspecs_are_found() -> None:
    # Guards the parametrised tests below against passing vacuously if the marker name changes.
    assert "wynerkit_register_datasets" in HOOKS
    assert "wynerkit_register_commands" in HOOKS


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_heading_and_its_signature_in_the_hook_reference(name: str) -> None:
    reference = hook_reference()
    headings = [line for line in reference.splitlines() if line.startswith("#")]
    assert any(name in heading for heading in headings), f"docs/plugins.md: no heading for hook {name}"
    signature = rendered_signature(name, HOOKS[name])
    lines = [line.strip() for line in reference.splitlines()]
    assert signature in lines, f"docs/plugins.md: hook reference lacks the signature line `{signature}`"


def test_hook_reference_documents_no_hook_that_does_not_exist() -> None:
    """A renamed or removed hook must not linger in the docs under its old name."""
    reference = hook_reference()
    documented = set(re.findall(r"^#+ .*?`(wynerkit_\w+)`", reference, flags=re.MULTILINE))
    assert documented == set(HOOKS)
