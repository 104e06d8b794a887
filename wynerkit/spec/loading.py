"""Load a spec file, apply ``--set`` overrides and validate it against the loaded plugins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from wynerkit.components import Registry
from wynerkit.errors import UsageError
from wynerkit.spec.error_lines import format_validation_error
from wynerkit.spec.models import RunSpecBase, build_run_spec_model
from wynerkit.spec.source import SpecSource, apply_overrides, read_spec_source


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec and the raw source it came from."""

    spec: RunSpecBase
    source: SpecSource


def load_spec(path: Path | str, registry: Registry, overrides: list[str] | None = None) -> LoadedSpec:
    """Read, override and validate; every problem becomes one line of a UsageError."""
    source = apply_overrides(read_spec_source(Path(path)), overrides or [])
    model = build_run_spec_model(registry)
    try:
        spec = model.model_validate(source.data)
    except ValidationError as exc:
        raise UsageError(format_validation_error(exc, source, model)) from None
    return LoadedSpec(spec=spec, source=source)
