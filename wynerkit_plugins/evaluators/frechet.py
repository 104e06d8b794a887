"""Fréchet distances of generated digits in a digit classifier's feature space: the evaluator ``fd``.

Feature space: the 50-d penultimate layer (after ReLU) of the MMVAE digit classifier of each side
(``digit_classifier.py``), not Inception and not the authors' autoencoder features (1024-d per
modality), so the values are comparable only between runs measured with this evaluator.

- ``fd.joint``: features of x and y concatenated (100-d); ``joint_samples`` pairs from the priors
  (``model.joint``) against every real test pair.
- ``fd.x2y`` / ``fd.y2x``: conditional FD. For each target digit class c, ``conditions_per_class``
  unique test images of the source side whose paired class is c (source digit (c - offset) mod 10
  for x->y) are each given ``samples_per_condition`` conditional samples; the pooled features of
  those samples are compared with the statistics of the target side's training images of class c.
  The mean over the classes is reported.

FD(N(mu1, S1), N(mu2, S2)) = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2, computed
in float64 with exact symmetric eigendecompositions (no iterative sqrtm). See ``docs/metrics.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike
from pydantic import Field, PositiveInt
from torch import Tensor

from wynerkit import BuildContext, EvalContext, hookimpl
from wynerkit.data.loading import fetch, in_order
from wynerkit.figures.panels import drawing
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.digit_classifier import (
    ClassifierParams,
    DigitClassifier,
    LabelledImages,
    Side,
    chunks,
    dataset_offset,
    digit_classifiers,
    side_images,
)


class FrechetParams(ClassifierParams):
    """Sample counts of the joint and conditional Fréchet distances (paper defaults; see docs for CPU values)."""

    joint_samples: PositiveInt = Field(16384, description="prior samples decoded for fd.joint")
    conditions_per_class: PositiveInt = Field(
        32, description="conditioning test images per target class for fd.x2y / fd.y2x (paper: 32)"
    )
    samples_per_condition: PositiveInt = Field(
        2048, description="conditional samples per conditioning image (paper: 2048; CPU: 64)"
    )


def frechet_distance(mu1: ArrayLike, cov1: ArrayLike, mu2: ArrayLike, cov2: ArrayLike) -> float:
    """The Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2), >= 0.

    tr (S1^1/2 S2 S1^1/2)^1/2 = tr (S1 S2)^1/2: S1^1/2 from an eigendecomposition, then the square
    roots of the (clipped, non-negative) eigenvalues of the symmetric S1^1/2 S2 S1^1/2.
    """
    m1, m2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = (np.atleast_2d(np.asarray(c, np.float64)) for c in (cov1, cov2))
    values, vectors = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ s2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    distance = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_root
    return float(max(distance, 0.0))  # rounding can leave a tiny negative for equal Gaussians


class Moments:
    """Running mean and covariance of feature rows in float64 (no need to keep the rows)."""

    def __init__(self) -> None:
        self.n, self.total, self.outer = 0, 0.0, 0.0
        self.shift: np.ndarray | None = None

    def add(self, rows: Tensor) -> None:
        r = rows.detach().to("cpu", torch.float64).numpy()
        if self.shift is None:
            self.shift = r.mean(0) if len(r) else None  # sums about a typical row: no cancellation in the covariance
        if self.shift is not None:
            r = r - self.shift
        self.n, self.total, self.outer = self.n + len(r), self.total + r.sum(0), self.outer + r.T @ r

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and unbiased covariance; needs two rows at least."""
        if self.n < 2 or self.shift is None:
            raise ValueError(f"a covariance needs at least two feature rows, got {self.n}")
        centred = self.total / self.n
        return self.shift + centred, (self.outer - self.n * np.outer(centred, centred)) / (self.n - 1)

    def distance(self, other: Moments) -> float:
        return frechet_distance(*self.stats(), *other.stats())


class FrechetDistance:
    """Joint and conditional Fréchet distances in digit-classifier feature space (a ``wynerkit.Evaluator``).

    Features: the 50-d penultimate layer of the MMVAE digit classifier of each side (x and y
    concatenated for ``fd.joint``). Lower is better; 0 means equal means and covariances.
    """

    def __init__(self, params: FrechetParams, data_root: Path) -> None:
        self.params, self.data_root = params, data_root

    def evaluate(self, run: EvalContext) -> dict[str, float]:
        p = self.params
        offset = dataset_offset(run.data, p.offset)
        judges = digit_classifiers(run.data, p, data_root=self.data_root, device=run.device)
        generator = torch.Generator(run.device).manual_seed(run.seed)
        picker = torch.Generator().manual_seed(run.seed)  # which conditioning images: CPU, device-independent
        with drawing(run.model, generator):
            made = Moments()
            for size in chunks(p.joint_samples, p.batch_size):
                x, y = run.model.joint(size, generator).require("x", "y")
                made.add(torch.cat([judges["x"].features(x), judges["y"].features(y)], dim=1))
            real = Moments()
            test = run.data.split("test")
            for indices in in_order(test, p.batch_size):
                batch = fetch(test, indices)
                real.add(torch.cat([judges["x"].features(batch["x"]), judges["y"].features(batch["y"])], dim=1))
            return {
                "fd.joint": made.distance(real),
                "fd.x2y": self.conditional(run, "x", judges["y"], offset, generator, picker),
                "fd.y2x": self.conditional(run, "y", judges["x"], -offset, generator, picker),
            }

    def conditional(
        self,
        run: EvalContext,
        source: Side,
        judge: DigitClassifier,
        offset: int,
        generator: torch.Generator,
        picker: torch.Generator,
    ) -> float:
        """Mean over target classes of the FD between conditional samples and that class's training images."""
        target: Side = "y" if source == "x" else "x"
        conditions = side_images(run.data.split("test"), source)
        reference = class_moments(side_images(run.data.split("train"), target), judge, self.params.batch_size)
        transfer = run.model.x_to_y if source == "x" else run.model.y_to_x
        distances = []
        for digit, truth in sorted(reference.items()):
            pool = torch.nonzero(conditions.labels == (digit - offset) % 10).flatten()
            if len(pool) == 0 or truth.n < 2:
                continue  # no conditioning image or too few training images for this class
            chosen = pool[torch.randperm(len(pool), generator=picker)[: self.params.conditions_per_class]]
            made = Moments()
            for positions in chosen.repeat_interleave(self.params.samples_per_condition).split(self.params.batch_size):
                images = conditions.images(positions).to(run.device)
                made.add(judge.features(transfer(images, generator).require(target)[0]))
            distances.append(made.distance(truth))
        if not distances:
            raise ValueError(f"no digit class has both {source} test images and {target} training images")
        return float(np.mean(distances))


def class_moments(images: LabelledImages, judge: DigitClassifier, batch_size: int) -> dict[int, Moments]:
    """Feature moments of each digit class of a set of images."""
    moments: dict[int, Moments] = {}
    for batch, labels in images.batches(batch_size):
        features = judge.features(batch).cpu()
        for digit in labels.unique().tolist():
            moments.setdefault(digit, Moments()).add(features[labels == digit])
    return moments


def make_fd(params: FrechetParams, context: BuildContext) -> FrechetDistance:
    """Joint and conditional Fréchet distances in the 50-d feature space of MMVAE digit classifiers."""
    return FrechetDistance(params, context.data_root)


@hookimpl
def wynerkit_register_evaluators(register: Register) -> None:
    register("fd", make_fd, params=FrechetParams)
