"""Every built-in component, and each of its parameters, is documented in docs/components.md."""

from __future__ import annotations

from pathlib import Path

DOC = (Path(__file__).parent.parent / "docs" / "components.md").read_text()


def test_every_builtin_component_and_parameter_is_documented(builtin_host):
    for component in builtin_host.registry:
        heading = f"### `{component.name}` ({component.kind}, plugin `{component.plugin}`)"
        assert heading in DOC, f"docs/components.md lacks the heading {heading!r}"
        section = DOC.split(heading, 1)[1].split("\n### ", 1)[0]
        for field in component.params.model_fields:
            assert f"| `{field}` |" in section, f"{component.kind} {component.name}: field {field!r} undocumented"
