"""Run directories: ``<out>/<name>/<timestamp>-<hash>/`` holding the spec, resolved spec and env."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from wynerkit.atomic import write_json_atomic, write_text_atomic
from wynerkit.errors import UsageError
from wynerkit.plugins import PluginHost
from wynerkit.rundir.paths import RunDir
from wynerkit.spec.models import RunSpecBase
from wynerkit.spec.source import SpecSource


def spec_hash(spec: RunSpecBase) -> str:
    """Eight hex digits identifying the resolved spec (defaults filled in)."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


def create_run_dir(out: Path, spec: RunSpecBase, source: SpecSource, host: PluginHost) -> Path:
    """Make a fresh run directory and write ``spec.yaml``, ``spec.resolved.json`` and ``env.json``.

    An existing directory is never reused or overwritten: a clash gets a ``-2``, ``-3``... suffix.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, not a directory; pass a directory for run outputs")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    parent = out / spec.name
    try:
        parent.mkdir(parents=True, exist_ok=True)
        run_dir = _fresh_dir(parent, f"{stamp}-{spec_hash(spec)}")
    except PermissionError as exc:
        raise UsageError(f"--out {out}: cannot create the run directory: {exc.strerror}") from None
    write_run_files(run_dir, source, spec.model_dump(mode="json"), host)
    return run_dir


@contextmanager
def removed_if_unstarted(run_dir: Path, fresh: bool = True) -> Iterator[None]:
    """Delete a ``fresh`` run directory again when the work inside fails before training wrote to it.

    A run that cannot start (bad data, a crash building the model, Ctrl-C) then leaves no spec-only
    directory behind; whatever a run did write (metrics, checkpoints, a summary) is kept.
    """
    try:
        yield
    except BaseException:
        if fresh and not any(path.exists() for path in RunDir(run_dir).started_marks):
            shutil.rmtree(run_dir, ignore_errors=True)
            print(f"removed {run_dir}: the run failed before training wrote anything", file=sys.stderr)
            with suppress(OSError):  # ``<out>/<name>``, when this was its only run
                run_dir.parent.rmdir()
        raise


def write_run_files(run_dir: Path, source: SpecSource, resolved: dict[str, Any], host: PluginHost) -> None:
    """``spec.resolved.json``, ``env.json``, then ``spec.yaml`` (written last: it marks a started run)."""
    paths = RunDir(run_dir)
    write_json_atomic(paths.resolved_spec, resolved)
    write_json_atomic(paths.env, environment(host))
    write_text_atomic(paths.spec, effective_yaml(source))


def _fresh_dir(parent: Path, base: str) -> Path:
    for attempt in range(1, 1000):
        candidate = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise UsageError(f"{parent}: too many runs named {base}; clean up old run directories")


def effective_yaml(source: SpecSource) -> str:
    """The spec as it ran: the source file's data with every ``--set`` applied."""
    header = f"# spec from {source.path}"
    if source.overrides:
        header += "\n# with " + " ".join(f"--set {a}" for a in source.overrides.values())
    return header + "\n" + yaml.safe_dump(source.data, sort_keys=False)


def environment(host: PluginHost) -> dict[str, Any]:
    """Versions of everything that shapes a run's numbers: python, torch, wynerkit, plugins."""
    import numpy
    import torch

    import wynerkit

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "numpy": numpy.__version__,
        "wynerkit": wynerkit.__version__,
        "plugins": [
            {
                "name": p.name,
                "version": p.version,
                "builtin": p.builtin,
                "components": [f"{c.kind}:{c.name}" for c in host.components_of(p.name)],
            }
            for p in host.plugins
        ],
        "blocked_plugins": host.blocked,
        "plugin_errors": [str(e) for e in host.errors],
        "argv": sys.argv,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
