"""Where each file of a run directory lives: the one place that spells the layout out.

``wynerkit run`` writes the layout below; ``run --resume``, ``eval``, ``sample``, ``retrieve`` and
sweeps read it. Tests spell the names out on their own: they check the layout users rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wynerkit.rundir.checkpoint import BEST
from wynerkit.rundir.lock import LOCK_FILE


@dataclass(frozen=True)
class RunDir:
    """A run directory ``<out>/<name>/<timestamp>-<hash>/`` and the path of each file in it."""

    path: Path

    @property
    def spec(self) -> Path:
        """``spec.yaml``: the spec as it ran, ``--set`` overrides applied (written last: a started run)."""
        return self.path / "spec.yaml"

    @property
    def resolved_spec(self) -> Path:
        """``spec.resolved.json``: the validated spec with every default filled in."""
        return self.path / "spec.resolved.json"

    @property
    def env(self) -> Path:
        """``env.json``: versions of python, torch, wynerkit and the plugins."""
        return self.path / "env.json"

    @property
    def metrics(self) -> Path:
        """``metrics.jsonl``: averaged training values and ``valid.loss``, one JSON object a line."""
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: ``step-<8 digits>/`` directories and ``best/``."""
        return self.path / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        """``checkpoints/best/``: the checkpoint with the lowest ``valid.loss`` so far."""
        return self.checkpoints / BEST

    @property
    def summary(self) -> Path:
        """``summary.json``: the run's outcome and every evaluator's metrics."""
        return self.path / "summary.json"

    @property
    def figures(self) -> Path:
        """``figures/``: the PNGs of training and of evaluators."""
        return self.path / "figures"

    @property
    def lock(self) -> Path:
        """``.wynerkit.lock``: held by the one process working in the directory."""
        return self.path / LOCK_FILE

    @property
    def started_marks(self) -> tuple[Path, ...]:
        """What a run writes once training has begun; a directory without any of them holds only its spec."""
        return (self.metrics, self.checkpoints, self.summary)

    def is_run(self) -> bool:
        """Whether ``wynerkit run`` made this directory (it holds ``spec.yaml``)."""
        return self.spec.is_file()
