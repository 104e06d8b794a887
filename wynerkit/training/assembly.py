"""Build a run's parts from a validated spec: data, model, objective, estimator, on one device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from wynerkit.components import BuildContext, Registry
from wynerkit.errors import UsageError
from wynerkit.interfaces import DatasetProvider
from wynerkit.training.objective import Objective, build_objective


@dataclass
class RunParts:
    spec: Any
    data: DatasetProvider
    model: nn.Module
    objective: Objective
    estimator: nn.Module | None
    device: torch.device


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without it is a usage error."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise UsageError("train.device: cuda was requested but no CUDA device is available; use auto or cpu")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def assemble(spec: Any, registry: Registry) -> RunParts:
    """Seed torch, then build every part the spec names (the same seed gives the same initial weights)."""
    if spec.objective is None:
        raise UsageError("objective: a training run needs an objective; add objective.terms (see docs/specs.md)")
    device = resolve_device(spec.train.device)
    torch.manual_seed(spec.seed)
    context = BuildContext(registry=registry, seed=spec.seed, device=device)
    data = context.build(spec.data)
    model = context.build(spec.model)
    objective = build_objective(spec.objective, context)
    estimator = None
    if objective.heads:
        if spec.estimator is None:
            raise UsageError(
                f"estimator: the objective's terms use critic heads ({', '.join(objective.heads)}); "
                "add an estimator, e.g. estimator: {name: adversarial-js}"
            )
        estimator = context.build(
            spec.estimator, x=model.x_modality, y=model.y_modality, latent=model.latent, heads=objective.heads
        )
    return RunParts(spec, data, model, objective, estimator, device)
