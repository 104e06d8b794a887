"""A run from start to finish: assemble the parts, train (or resume), draw figures, write the summary."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from wynerkit.atomic import write_json_atomic
from wynerkit.components import Registry
from wynerkit.data.loading import evenly_spaced, fetch
from wynerkit.evaluation.evaluate import Origin, eval_context, evaluate_model, read_summary
from wynerkit.figures.panels import figure_1
from wynerkit.rundir.paths import RunDir
from wynerkit.training.assembly import assemble
from wynerkit.training.distributed import Cluster
from wynerkit.training.divergence import TrainingDiverged
from wynerkit.training.trainer import Trainer

FIGURE_ROWS = 8
FIGURE_COLS = 8
FIGURE_ITEMS = 16
"""Test pairs drawn for figures: inputs come from the first rows, style references from the last cols."""


def train_run(
    run_dir: Path, spec: Any, registry: Registry, *, resume: bool = False, cluster: Cluster | None = None
) -> dict[str, Any]:
    """Train the spec's model in ``run_dir`` and write ``summary.json``; returns the summary.

    In a distributed run (``cluster``) every rank trains; rank 0 alone then draws the figures, writes
    the summary and runs the evaluators, and the other ranks return the summary without them.
    """
    cluster = cluster or Cluster()
    parts = assemble(spec, registry)
    trainer = Trainer(parts, run_dir, cluster)
    resumed_from = trainer.resume() if resume else None
    summary: dict[str, Any] = {
        "name": spec.name,
        "seed": spec.seed,
        "device": str(parts.device),
        "processes": cluster.world,
        "execution": asdict(trainer.execution),
        "data": parts.data.describe(),
        "planned_steps": trainer.total,
        "steps_per_epoch": trainer.steps_per_epoch,
    }
    if resumed_from is not None:
        summary["resumed_from_step"] = resumed_from
    try:
        summary.update(trainer.fit())
    except TrainingDiverged as exc:
        if cluster.is_main:
            write_json_atomic(RunDir(run_dir).summary, {**summary, "status": "diverged", "error": str(exc)})
        raise
    if not cluster.is_main:
        return {**summary, "status": "finished"}
    records = trainer.log.read()
    summary["final"] = next((r for r in reversed(records) if "loss.generator" in r), {})
    summary["valid.loss"] = next((r["valid.loss"] for r in reversed(records) if "valid.loss" in r), None)
    summary["best"] = trainer.best
    summary["figures"] = sorted(str(p.relative_to(run_dir)) for p in draw_figures(trainer, run_dir).values())
    summary["status"] = "finished"
    write_json_atomic(RunDir(run_dir).summary, summary)
    if spec.evaluate:  # the spec's evaluators on the final EMA model (= the latest checkpoint's)
        context = eval_context(run_dir, trainer.ema.model, parts.data, parts.device, spec.seed)
        evaluate_model(run_dir, context, registry, spec.evaluate, Origin("latest", summary["steps"]))
        summary = read_summary(run_dir)
    return summary


def draw_figures(trainer: Trainer, run_dir: Path) -> dict[str, Path]:
    """The three panels of the paper's Figure 1 from the EMA model on test pairs spread over the split."""
    parts = trainer.parts
    test = parts.data.split("test")
    batch = fetch(test, evenly_spaced(test, FIGURE_ITEMS))
    generator = torch.Generator(parts.device).manual_seed(parts.spec.seed)
    return figure_1(
        trainer.ema.model,
        batch["x"],
        batch["y"],
        RunDir(run_dir).figures,
        generator,
        rows=FIGURE_ROWS,
        cols=FIGURE_COLS,
    )
