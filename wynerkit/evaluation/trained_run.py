"""Open a finished (or interrupted) run: its spec, its data, and the EMA model of one checkpoint.

The checkpoint's ``state.json`` must parse and its EMA weights must match the digest recorded when
they were written: a damaged checkpoint is named in one line, never evaluated or sampled from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from wynerkit.components import Registry
from wynerkit.errors import UsageError
from wynerkit.rundir.checkpoint import Checkpoint, fit_weights, step_checkpoints
from wynerkit.rundir.paths import RunDir
from wynerkit.spec.loading import load_spec
from wynerkit.training.assembly import RunParts, assemble

Which = Literal["latest", "best"]


def checkpoint_dir(run_dir: Path, which: Which) -> Path:
    """The newest numbered checkpoint, or ``best``, with a readable ``state.json``; a usage error when the
    run has none, ``CheckpointDamaged`` naming the file when it is damaged."""
    paths = RunDir(run_dir)
    if not paths.is_run():
        raise UsageError(f"{run_dir}: not a run directory (no spec.yaml); pass a directory `wynerkit run` created")
    if which == "best":
        if not paths.best_checkpoint.is_dir():
            raise UsageError(f"{run_dir}: no best checkpoint yet; use --checkpoint latest or train longer")
        path = paths.best_checkpoint
    else:
        found = step_checkpoints(paths.checkpoints)
        if not found:
            raise UsageError(f"{run_dir}: no checkpoint yet; train (or resume) the run until it writes one")
        path = found[-1]
    Checkpoint.open(path)
    return path


def open_trained(run_dir: Path, registry: Registry, which: Which = "latest") -> RunParts:
    """The run's parts with the model replaced by the checkpoint's EMA weights, in eval mode."""
    path = checkpoint_dir(run_dir, which)
    ema = Checkpoint.open(path).tensors("ema.safetensors")  # checked before the (slow) assembly
    parts = assemble(load_spec(RunDir(run_dir).spec, registry).spec, registry)
    fit_weights(parts.model, ema, path / "ema.safetensors", "ema")
    parts.model.eval()
    return parts
