"""Open a finished (or interrupted) run: its spec, its data, and the EMA model of one checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from wynerkit.assembly import RunParts, assemble
from wynerkit.checkpoint import BEST, load_weights, step_checkpoints
from wynerkit.components import Registry
from wynerkit.errors import UsageError
from wynerkit.spec_loading import load_spec
from wynerkit.trainer import CHECKPOINTS

Which = Literal["latest", "best"]


def checkpoint_dir(run_dir: Path, which: Which) -> Path:
    """The newest numbered checkpoint, or ``best``; a usage error when the run has none."""
    if not (run_dir / "spec.yaml").is_file():
        raise UsageError(f"{run_dir}: not a run directory (no spec.yaml); pass a directory `wynerkit run` created")
    directory = run_dir / CHECKPOINTS
    if which == "best":
        if (directory / BEST).is_dir():
            return directory / BEST
        raise UsageError(f"{run_dir}: no best checkpoint yet; use --checkpoint latest or train longer")
    found = step_checkpoints(directory)
    if not found:
        raise UsageError(f"{run_dir}: no checkpoint yet; train (or resume) the run until it writes one")
    return found[-1]


def open_trained(run_dir: Path, registry: Registry, which: Which = "latest") -> RunParts:
    """The run's parts with the model replaced by the checkpoint's EMA weights, in eval mode."""
    path = checkpoint_dir(run_dir, which)
    parts = assemble(load_spec(run_dir / "spec.yaml", registry).spec, registry)
    load_weights(parts.model, path / "ema.safetensors", "ema")
    parts.model.eval()
    return parts
