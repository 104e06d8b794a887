"""The ``gaussian-pairs`` dataset: correlated Gaussian pairs whose structure is known exactly.

    z ~ N(0, I_z),  u ~ N(0, I_u),  v ~ N(0, I_v)
    x = A [z; u] + noise * e_x,   y = B [z; v] + noise * e_y,   e_x, e_y ~ N(0, I)

Because (x, y) is jointly Gaussian with a covariance we can write down, estimators and models can
be checked against closed-form truth (``covariance()``, ``mutual_information()``), and smoke runs
need no downloads. The mixing matrices A and B depend only on ``structure_seed``; the samples only
on the run seed, with one independent random stream per split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from wynerkit import BuildContext, ComponentParams, Pair, Split, hookimpl
from wynerkit.data.gaussian_info import gaussian_mutual_information
from wynerkit.data.splits import SPLITS, check_split
from wynerkit.hookspecs import Register

NAME = "gaussian-pairs"
_SPLIT_KEY = {name: i for i, name in enumerate(SPLITS)}
"""Stable spawn keys: the stream of a split must not change when another split's size does."""


class GaussianPairsParams(ComponentParams):
    """Latent and observed sizes, noise level, split sizes and the seed of the mixing matrices."""

    z_dim: PositiveInt = Field(2, description="Size of the common code z shared by x and y.")
    u_dim: NonNegativeInt = Field(2, description="Size of the local code u that only x sees (0: none).")
    v_dim: NonNegativeInt = Field(2, description="Size of the local code v that only y sees (0: none).")
    x_dim: PositiveInt = Field(8, description="Size of each x vector.")
    y_dim: PositiveInt = Field(8, description="Size of each y vector.")
    noise: PositiveFloat = Field(0.1, allow_inf_nan=False, description="Standard deviation of the observation noise.")
    n_train: PositiveInt = Field(10000, description="Number of training pairs.")
    n_valid: PositiveInt = Field(1000, description="Number of validation pairs.")
    n_test: PositiveInt = Field(1000, description="Number of test pairs.")
    structure_seed: NonNegativeInt = Field(
        0, description="Seed of the mixing matrices A and B (the samples are seeded by the run seed)."
    )


class PairTensors(torch.utils.data.Dataset[Pair]):
    """One split held in memory as two float32 tensors; items are unlabelled ``Pair`` dicts."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x and y must have the same number of items, got {x.shape[0]} and {y.shape[0]}")
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index: int) -> Pair:
        return {"x": self.x[index], "y": self.y[index], "x_label": -1, "y_label": -1}


class GaussianPairs:
    """Provider of correlated Gaussian pairs; splits are drawn on first use and kept in memory."""

    def __init__(self, params: GaussianPairsParams, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"gaussian-pairs needs a non-negative seed, got {seed}")
        self.params = params
        self.seed = seed
        self.x_shape: tuple[int, ...] = (params.x_dim,)
        self.y_shape: tuple[int, ...] = (params.y_dim,)
        structure = np.random.default_rng(params.structure_seed)
        # Dividing by sqrt(fan-in) gives each noiseless coordinate variance ~1 whatever the sizes.
        self._a = structure.standard_normal((params.x_dim, params.z_dim + params.u_dim)) / np.sqrt(
            params.z_dim + params.u_dim
        )
        self._b = structure.standard_normal((params.y_dim, params.z_dim + params.v_dim)) / np.sqrt(
            params.z_dim + params.v_dim
        )
        self._splits: dict[str, PairTensors] = {}

    @property
    def mixing_x(self) -> np.ndarray:
        """A copy of A, the ``[x_dim, z_dim + u_dim]`` matrix mapping [z; u] to x."""
        return self._a.copy()

    @property
    def mixing_y(self) -> np.ndarray:
        """A copy of B, the ``[y_dim, z_dim + v_dim]`` matrix mapping [z; v] to y."""
        return self._b.copy()

    def size(self, name: Split) -> int:
        """The number of items of one split, without generating it."""
        check_split(name)
        return int(getattr(self.params, f"n_{name}"))

    def split(self, name: Split) -> PairTensors:
        """The items of one split, drawn from the split's own stream on first use."""
        check_split(name)
        if name not in self._splits:
            self._splits[name] = self._generate(name)
        return self._splits[name]

    def covariance(self) -> np.ndarray:
        """The exact covariance of (x, y), float64 ``[x_dim + y_dim, x_dim + y_dim]`` (the mean is zero)."""
        p = self.params
        a_z = self._a[:, : p.z_dim]
        b_z = self._b[:, : p.z_dim]
        noise_var = p.noise**2
        cov_xx = self._a @ self._a.T + noise_var * np.eye(p.x_dim)
        cov_yy = self._b @ self._b.T + noise_var * np.eye(p.y_dim)
        cov_xy = a_z @ b_z.T  # only z is shared; u, v and the noises are independent
        return np.block([[cov_xx, cov_xy], [cov_xy.T, cov_yy]])

    def mutual_information(self) -> float:
        """The exact I(X; Y) in nats, from the joint covariance."""
        return gaussian_mutual_information(self.covariance(), self.params.x_dim)

    def describe(self) -> dict[str, Any]:
        """JSON-able facts for the run summary, including the true I(X; Y)."""
        p = self.params
        return {
            "name": NAME,
            "sizes": {name: self.size(name) for name in SPLITS},
            "x_shape": list(self.x_shape),
            "y_shape": list(self.y_shape),
            "z_dim": p.z_dim,
            "u_dim": p.u_dim,
            "v_dim": p.v_dim,
            "noise": p.noise,
            "structure_seed": p.structure_seed,
            "seed": self.seed,
            "mutual_information_xy_nats": self.mutual_information(),
            "stand_in": False,
            "source": "synthetic: jointly Gaussian pairs drawn from a known linear model, generated in memory",
        }

    def _generate(self, name: Split) -> PairTensors:
        p = self.params
        n = self.size(name)
        rng = np.random.default_rng(np.random.SeedSequence(entropy=self.seed, spawn_key=(_SPLIT_KEY[name],)))
        latent = rng.standard_normal((n, p.z_dim + p.u_dim + p.v_dim))
        z, u, v = np.split(latent, [p.z_dim, p.z_dim + p.u_dim], axis=1)
        x = np.concatenate([z, u], axis=1) @ self._a.T + p.noise * rng.standard_normal((n, p.x_dim))
        y = np.concatenate([z, v], axis=1) @ self._b.T + p.noise * rng.standard_normal((n, p.y_dim))
        return PairTensors(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32)))


def make_gaussian_pairs(params: GaussianPairsParams, context: BuildContext) -> GaussianPairs:
    """Correlated Gaussian pairs with known covariance and mutual information (synthetic)."""
    return GaussianPairs(params, seed=context.seed)


@hookimpl
def wynerkit_register_datasets(register: Register) -> None:
    """Register the ``gaussian-pairs`` dataset."""
    register(NAME, make_gaussian_pairs, params=GaussianPairsParams)
