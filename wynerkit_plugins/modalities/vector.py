"""The feature-vector modality: pre-extracted feature vectors (e.g. 512-d VGG features) with MLP networks.

The paper's Sketchy experiments model images and sketches through such vectors: the encoder trunk is
"linear 512-512 + BN + LeakyReLU" and the decoder maps (z, u) through 128 hidden units back to 512.
All three networks come from one builder, ``mlp``, so they differ only in widths and normalisation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import Field, PositiveInt
from torch import Tensor, nn

from wynerkit import BuildContext, ComponentParams, hookimpl
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.losses import checked_item_error

LEAKY_SLOPE = 0.2
STRIP_HEIGHT = 8
"""Pixel height of one item's strip in ``to_grid``: tall enough to see, short enough to stack many."""
SEPARATOR = 255
"""Grey level of the 1-pixel lines between (and around) items in ``to_grid``."""

# A diverging blue-white-red ramp: low values blue, middle white, high values red.
_RAMP_POSITIONS = np.array([0.0, 0.5, 1.0])
_RAMP_COLOURS = np.array([[33.0, 102.0, 172.0], [247.0, 247.0, 247.0], [178.0, 24.0, 43.0]])


class VectorParams(ComponentParams):
    """Sizes of the feature vectors and of the MLPs that read and write them."""

    dim: PositiveInt = Field(description="Size of each feature vector (e.g. 512 for VGG features).")
    hidden: PositiveInt = Field(512, description="Width of the hidden layers of the encoder and critic trunks.")
    layers: PositiveInt = Field(1, description="Number of hidden layers in each trunk (before the output layer).")
    features: PositiveInt = Field(512, description="Size of a trunk's output features.")
    decoder_hidden: PositiveInt = Field(128, description="Width of the decoder's hidden layer.")
    batch_norm: bool = Field(
        True,
        description="BatchNorm in the encoder trunk (its statistics are per process in distributed CPU training)",
    )
    loss: Literal["l2", "l1"] = Field(
        "l2", description="Per-item reconstruction loss: mean squared (l2) or mean absolute (l1) error."
    )


class MLP(nn.Sequential):
    """A stack of Linear layers with LeakyReLU, optionally BatchNorm; exposes ``out_features``.

    ``out_features`` is what ``wynerkit.FeatureNet`` asks for, so models can size their heads.
    """

    def __init__(self, widths: Sequence[int], *, batch_norm: bool, activate_last: bool) -> None:
        if len(widths) < 2:
            raise ValueError(f"an MLP needs at least an input and an output width, got {list(widths)}")
        layers: list[nn.Module] = []
        last = len(widths) - 2
        for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
            layers.append(nn.Linear(n_in, n_out))
            if i < last or activate_last:
                if batch_norm:
                    layers.append(nn.BatchNorm1d(n_out))
                layers.append(nn.LeakyReLU(LEAKY_SLOPE))
        super().__init__(*layers)
        self.in_features = int(widths[0])
        self.out_features = int(widths[-1])


def mlp(widths: Sequence[int], *, batch_norm: bool = False, activate_last: bool = False) -> MLP:
    """Build an MLP through ``widths`` (input first); the one builder every network here uses."""
    return MLP(widths, batch_norm=batch_norm, activate_last=activate_last)


class VectorModality:
    """Feature vectors of size ``dim``: MLP trunks and decoder, L2/L1 loss, heatmap pictures."""

    def __init__(self, params: VectorParams) -> None:
        self.params = params
        self.shape: tuple[int, ...] = (params.dim,)
        self.value_range: tuple[float, float] = (-math.inf, math.inf)

    def __repr__(self) -> str:
        return f"VectorModality({self.params!r})"

    def _trunk_widths(self) -> list[int]:
        p = self.params
        return [p.dim, *([p.hidden] * p.layers), p.features]

    def encoder_trunk(self) -> MLP:
        """A fresh encoder trunk ``[B, dim] -> [B, features]``: Linear (+ BatchNorm) + LeakyReLU blocks."""
        return mlp(self._trunk_widths(), batch_norm=self.params.batch_norm, activate_last=True)

    def critic_trunk(self) -> MLP:
        """A fresh critic trunk, shaped like the encoder's but without BatchNorm.

        Critics see batches mixing samples of two distributions; batch statistics would leak which
        side an item came from.
        """
        return mlp(self._trunk_widths(), batch_norm=False, activate_last=True)

    def decoder(self, in_features: int) -> MLP:
        """A fresh decoder ``[B, in_features] -> [B, dim]``; no output activation (features are unbounded)."""
        if in_features < 1:
            raise ValueError(f"decoder needs in_features >= 1, got {in_features}")
        p = self.params
        return mlp([in_features, p.decoder_hidden, p.dim], batch_norm=False, activate_last=False)

    def _check_batch(self, what: str, batch: Tensor) -> None:
        if batch.ndim != 2 or batch.shape[1] != self.params.dim:
            raise ValueError(
                f"{what} must have shape [B, {self.params.dim}] (a batch of {self.params.dim}-d vectors), "
                f"got {list(batch.shape)}"
            )

    def reconstruction_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Per-item loss ``[B]``: mean over features of the squared (l2) or absolute (l1) error."""
        return checked_item_error(output, target, self.params.loss, self._check_batch, f"[B, {self.params.dim}]")

    def to_grid(self, batch: Tensor, nrow: int) -> np.ndarray:
        """Render a batch as uint8 ``[H, W, 3]``: one heatmap strip per item, ``nrow`` items per row.

        Colours are normalised by the batch's 1st and 99th percentiles so that a few outliers do
        not wash out the picture; non-finite values are drawn as the middle colour.
        """
        self._check_batch("to_grid batch", batch)
        if nrow < 1:
            raise ValueError(f"to_grid needs nrow >= 1, got {nrow}")
        values = batch.detach().to("cpu", torch.float64).numpy()
        n, dim = values.shape
        if n == 0:
            raise ValueError(
                f"to_grid needs at least one item of shape [B, {dim}] with B >= 1, got {list(batch.shape)}"
            )
        colours = _heatmap(_normalise(values))  # [n, dim, 3]
        cols = min(nrow, n)
        rows = math.ceil(n / cols)
        grid = np.full((rows * (STRIP_HEIGHT + 1) + 1, cols * (dim + 1) + 1, 3), SEPARATOR, dtype=np.uint8)
        for i in range(n):
            top = 1 + (i // cols) * (STRIP_HEIGHT + 1)
            left = 1 + (i % cols) * (dim + 1)
            grid[top : top + STRIP_HEIGHT, left : left + dim] = colours[i]
        return grid


def _normalise(values: np.ndarray) -> np.ndarray:
    """Map values to [0, 1] by the 1st/99th percentile of the finite ones; NaN goes to 0.5."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full(values.shape, 0.5)
    low, high = np.percentile(finite, [1.0, 99.0])
    if high - low <= 1e-12 * max(1.0, abs(high)):
        scaled = np.full(values.shape, 0.5)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            scaled = np.clip((values - low) / (high - low), 0.0, 1.0)
    return np.where(np.isnan(scaled), 0.5, scaled)


def _heatmap(scaled: np.ndarray) -> np.ndarray:
    """Colour values in [0, 1] with the blue-white-red ramp; returns uint8 ``[..., 3]``."""
    channels = [np.interp(scaled, _RAMP_POSITIONS, _RAMP_COLOURS[:, c]) for c in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def make_vector_modality(params: VectorParams, context: BuildContext) -> VectorModality:
    """Feature vectors (MLP encoders, decoders and critics)."""
    del context  # nothing here depends on the seed or device: networks are built fresh on request
    return VectorModality(params)


@hookimpl
def wynerkit_register_modalities(register: Register) -> None:
    """Register the ``vector`` modality."""
    register("vector", make_vector_modality, params=VectorParams)
