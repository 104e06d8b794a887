"""Coherence of generated digit pairs, read by digit classifiers: the evaluator ``coherence``.

- ``coherence.joint``: pairs (x, y) decoded from the priors (``model.joint``); a pair is coherent
  iff the classifiers read label(y) == (label(x) + offset) mod 10 (offset 1: MNIST-SVHN "add-one").
- ``coherence.x2y`` / ``coherence.y2x``: one conditional sample per test pair (``model.x_to_y`` /
  ``model.y_to_x``); coherent iff the classifier reads the paired target's (true) label.
- ``classifier.x.test_accuracy`` / ``classifier.y.test_accuracy``: the judges' own accuracy on the
  unique test images; a coherence can hardly exceed it.

All values lie in [0, 1]. Sampling uses a ``torch.Generator`` seeded from the run's seed, so one
model and seed give the same numbers. See ``docs/metrics.md``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field, PositiveInt
from torch import Tensor

from wynerkit import BimodalModel, BuildContext, EvalContext, hookimpl
from wynerkit.data.loading import fetch
from wynerkit.figures.panels import drawing
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.digit_classifier import (
    ClassifierParams,
    DigitClassifier,
    chunks,
    dataset_offset,
    digit_classifiers,
)
from wynerkit_plugins.shared.evaluated_items import chosen_positions


class CoherenceParams(ClassifierParams):
    """How many samples the coherences read, and how the digit classifiers are trained."""

    joint_samples: PositiveInt = Field(16384, description="prior samples decoded for coherence.joint (MMVAE: 16384)")
    max_test_pairs: PositiveInt | None = Field(
        None, description="conditional coherences on at most this many test pairs (a seeded subset); None: all"
    )


def coherence_from_labels(read: Tensor, expected: Tensor) -> float:
    """The share of items whose read label is the expected one, in [0, 1]."""
    if read.shape != expected.shape or read.numel() == 0:
        raise ValueError(
            f"need equally many read and expected labels, at least one; got {read.shape}, {expected.shape}"
        )
    return float((read.cpu() == expected.cpu()).double().mean())


def joint_coherence_from_labels(x_read: Tensor, y_read: Tensor, offset: int) -> float:
    """The share of generated pairs whose read labels obey the pairing y = (x + offset) mod 10."""
    return coherence_from_labels(y_read, (x_read + offset) % 10)


class Coherence:
    """Joint and conditional coherence of a model on a paired digit dataset (a ``wynerkit.Evaluator``)."""

    def __init__(self, params: CoherenceParams, data_root: Path) -> None:
        self.params, self.data_root = params, data_root

    def evaluate(self, run: EvalContext) -> dict[str, float]:
        offset = dataset_offset(run.data, self.params.offset)
        judges = digit_classifiers(run.data, self.params, data_root=self.data_root, device=run.device)
        generator = torch.Generator(run.device).manual_seed(run.seed)
        with drawing(run.model, generator):
            x_read, y_read = joint_reads(
                run.model, judges, self.params.joint_samples, self.params.batch_size, generator
            )
            conditional = conditional_reads(run, judges, self.params, generator)
        return {
            "coherence.joint": joint_coherence_from_labels(x_read, y_read, offset),
            "coherence.x2y": coherence_from_labels(*conditional["x2y"]),
            "coherence.y2x": coherence_from_labels(*conditional["y2x"]),
            "classifier.x.test_accuracy": judges["x"].test_accuracy,
            "classifier.y.test_accuracy": judges["y"].test_accuracy,
        }


def joint_reads(
    model: BimodalModel, judges: dict[str, DigitClassifier], n: int, batch_size: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """The labels the classifiers read on ``n`` pairs from ``model.joint``."""
    reads: tuple[list[Tensor], list[Tensor]] = ([], [])
    for size in chunks(n, batch_size):
        x, y = model.joint(size, generator).require("x", "y")
        reads[0].append(judges["x"].predict(x).cpu())
        reads[1].append(judges["y"].predict(y).cpu())
    return torch.cat(reads[0]), torch.cat(reads[1])


def conditional_reads(
    run: EvalContext, judges: dict[str, DigitClassifier], params: CoherenceParams, generator: torch.Generator
) -> dict[str, tuple[Tensor, Tensor]]:
    """(read, true) target labels of one x->y and one y->x sample per (selected) test pair."""
    test = run.data.split("test")
    out: dict[str, tuple[list[Tensor], list[Tensor]]] = {"x2y": ([], []), "y2x": ([], [])}
    for positions in chosen_positions(len(test), params.max_test_pairs, run.seed).split(params.batch_size):
        batch = fetch(test, positions.tolist())
        y_made = run.model.x_to_y(batch["x"].to(run.device), generator).require("y")[0]
        x_made = run.model.y_to_x(batch["y"].to(run.device), generator).require("x")[0]
        for key, made, side in (("x2y", y_made, "y"), ("y2x", x_made, "x")):
            out[key][0].append(judges[side].predict(made).cpu())
            out[key][1].append(torch.as_tensor(batch[f"{side}_label"]).long())
    return {key: (torch.cat(read), torch.cat(true)) for key, (read, true) in out.items()}


def make_coherence(params: CoherenceParams, context: BuildContext) -> Coherence:
    """Joint and conditional coherence of generated digit pairs, read by MMVAE digit classifiers."""
    return Coherence(params, context.data_root)


@hookimpl
def wynerkit_register_evaluators(register: Register) -> None:
    register("coherence", make_coherence, params=CoherenceParams)
