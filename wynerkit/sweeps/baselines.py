"""Baseline overlays (``--baseline``): YAML mappings of dotted spec keys to values, read as ``--set`` reads them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wynerkit.errors import UsageError
from wynerkit.spec.source import check_yaml_bounds
from wynerkit.sweeps.values import check_storable, parse_all


@dataclass(frozen=True)
class Baseline:
    """A baseline overlay: its label (the file stem), its file and its dotted-key entries."""

    label: str
    path: Path
    entries: dict[str, Any]
    unset: tuple[str, ...] = ()
    """Dotted keys removed from the spec before the entries apply (fields the overlay's component lacks)."""


UNSET = "unset"
"""The overlay key listing dotted spec keys to remove, e.g. ``unset: [model.local_noise]``."""


def read_baseline(path: Path) -> Baseline:
    """Read an overlay file: a YAML mapping of dotted keys to the values that replace those nodes.

    The key ``unset`` lists dotted keys to remove first (absent ones are ignored): an overlay that
    swaps a component can drop the fields only the replaced component has.
    """
    where = f"--baseline {path}"
    try:
        text = path.read_text(encoding="utf-8")
        check_yaml_bounds(text, str(path))  # an overlay is part of a spec: bounded alike
        data = yaml.safe_load(text)
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read it: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UsageError(f"{at}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{where}: invalid YAML: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and k.strip() for k in data):
        raise UsageError(
            f"{where}: an overlay is a mapping of dotted spec keys to values, e.g. `model.name: iiae` "
            "(each entry replaces the node at its key, as --set does)"
        )
    unset = data.pop(UNSET, [])
    if not isinstance(unset, list) or not all(isinstance(k, str) and k.strip() for k in unset):
        raise UsageError(f"{where}: {UNSET} is a list of dotted spec keys to remove, e.g. [model.local_noise]")
    for key, value in data.items():
        check_storable(value, f"{where}: {key}")
    return Baseline(label=path.stem, path=path, entries=data, unset=tuple(unset))


def read_baselines(paths: Sequence[Path]) -> list[Baseline]:
    """Every ``--baseline``; all problems at once, including two files with the same stem (label)."""
    return parse_all(
        paths,
        read_baseline,
        lambda baseline: baseline.label,
        lambda label: f"--baseline: two overlays are labelled {label!r} (labels are file stems); rename one",
    )
