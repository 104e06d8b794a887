"""One training step's shared state: each distribution sampled once, critic features computed once.

Objective terms read samples, log-ratios and reconstructions through a ``TrainingStep``, which
caches them, so terms that use the same distribution (D_x2y, I_x2y, R_x2x all use p_x->y) cost
one forward pass of the model between them. The model is sampled once per iteration with its
autograd graph: the critic phase reads detached copies (the critic trains on fixed samples), the
generator phase reads the originals, valid because a critic update leaves the model unchanged.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from wynerkit.interfaces import BimodalModel, Distribution, RatioEstimator
from wynerkit.sample import Sample


class TrainingStep:
    """Implements ``wynerkit.StepContext`` for one minibatch."""

    def __init__(
        self,
        model: BimodalModel,
        estimator: RatioEstimator | None,
        batch: Sample,
        generator: torch.Generator | None = None,
    ) -> None:
        self.model = model
        self.estimator = estimator
        self.batch = batch
        self.generator = generator
        self.critic_phase = False
        self._samples: dict[Distribution, Sample] = {}
        self._features: dict[Distribution, Tensor | None] = {}
        self._reconstructions: dict[tuple[str, Distribution], Tensor] = {}

    def begin_critic_phase(self) -> None:
        """Critic updates follow: detach samples and recompute critic features with the new critic."""
        self.critic_phase = True
        self._features.clear()

    def begin_generator_phase(self) -> None:
        """A generator update follows: read samples with their graph; features from the updated critic."""
        self.critic_phase = False
        self._features.clear()

    @property
    def drawn(self) -> tuple[Distribution, ...]:
        """The distributions sampled so far in this step."""
        return tuple(self._samples)

    def sample(self, distribution: Distribution) -> Sample:
        sample = self._with_graph(distribution)
        return sample.detach() if self.critic_phase else sample

    def log_ratio(
        self, head: str, distribution: Distribution, *, shuffle_z: bool = False, detach_features: bool = False
    ) -> Tensor:
        if self.estimator is None:
            raise ValueError(f"critic head {head!r} is used but the spec has no estimator; add one under 'estimator:'")
        sample = self.sample(distribution)
        features = None
        if "x" in self.estimator.heads[head]:
            if distribution not in self._features:
                self._features[distribution] = self.estimator.features(sample)
            features = self._features[distribution]
            if detach_features and features is not None:
                features = features.detach()
        if shuffle_z:
            sample = sample.shuffled("z", self.generator)
        return self.estimator.log_ratio(head, sample, features)

    def reconstruct(self, modality: Literal["x", "y"], distribution: Distribution) -> Tensor:
        key = (modality, distribution)
        if key not in self._reconstructions:
            sample = self._with_graph(distribution)
            local = "u" if modality == "x" else "v"
            z, code = sample.require("z", local)
            decoded = self.model.decode(z, **{local: code})
            self._reconstructions[key] = getattr(decoded, modality)
        return self._reconstructions[key]

    def _with_graph(self, distribution: Distribution) -> Sample:
        """The distribution's sample of this step, drawn on first use."""
        if distribution not in self._samples:
            self._samples[distribution] = self._draw(distribution)
        return self._samples[distribution]

    def _draw(self, distribution: Distribution) -> Sample:
        x, y = self.batch.require("x", "y")
        if distribution == "variational":
            return self.model.variational(x, y)
        if distribution == "joint":
            return self.model.joint(x.shape[0], self.generator)
        if distribution == "x2y":
            return self.model.x_to_y(x, self.generator)
        if distribution == "y2x":
            return self.model.y_to_x(y, self.generator)
        raise ValueError(f"unknown distribution {distribution!r}; use variational, joint, x2y or y2x")
