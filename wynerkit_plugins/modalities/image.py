"""The image modality: images ``[C, H, W]`` with pixels in [-1, 1], convolutional or MLP networks.

Networks work on a square canvas (``canvas``, default the larger image side). Smaller data, such as
MNIST's 28x28 on the 32x32 canvas of the MNIST-SVHN experiments, is fitted to it by the trunks
(centre padding with -1, or a bilinear resize) and decoder outputs are fitted back (crop / resize),
so every network reads and writes data-shaped batches.

Presets (``preset``) pick the architecture:

- ``paper``: the authors' MNIST-SVHN networks, a GPU setting. Encoder trunk: 4 convs (kernel 5,
  stride 2) 32-64-128-256 with BatchNorm after layers 2-4 and LeakyReLU(0.2); 1024 features on a
  32x32 canvas. Decoder: linear to 512 x side/8 x side/8, transposed convs 512-256-128-C with
  BatchNorm and ReLU between, tanh. Critic trunk: the encoder's conv stack without any BatchNorm.
  The authors stack x and y channels into one critic trunk of base width 64 (2048 features); we
  keep one trunk per modality of base width 32, so the two concatenated give 2048 features too.
- ``conv``: MMVAE's SVHN networks: convs (kernel 4, stride 2) 32-64-128(-256...) with ReLU down to
  4x4, and the mirror-image transposed convs; critics use LeakyReLU(0.2).
- ``mlp``: MMVAE's MNIST networks: one hidden layer of ``features`` (400) units each way.
- ``cpu`` (default): ``mlp`` for one channel on a canvas of side <= 32, else ``conv``. Both train
  in minutes on two CPU cores.
"""

from __future__ import annotations

import math
from typing import Literal, Self

import numpy as np
import torch
from pydantic import Field, PositiveInt, model_validator
from torch import Tensor

from wynerkit import BuildContext, ComponentParams, hookimpl
from wynerkit.hookspecs import Register
from wynerkit_plugins.modalities.image_nets import (
    MIN_CANVAS,
    Architecture,
    Decoder,
    Geometry,
    Trunk,
    build_decoder,
    build_trunk,
    is_power_of_two,
)
from wynerkit_plugins.shared.losses import checked_item_error

CPU_MLP_MAX_SIDE = 32
"""The ``cpu`` preset uses the MLP for single-channel images on canvases up to this side."""
GAP = 2
"""Pixel width of the separator lines between (and around) items in ``to_grid``."""
SEPARATOR = 128
"""Grey level of the separator lines in ``to_grid``."""


class ImageParams(ComponentParams):
    """Shape of the images, the canvas the networks work at, the architecture and the loss."""

    channels: PositiveInt = Field(description="Number of channels (1: grayscale, 3: RGB).")
    height: PositiveInt = Field(description="Image height in pixels.")
    width: PositiveInt | None = Field(None, description="Image width in pixels; None: the same as height.")
    canvas: PositiveInt | None = Field(
        None,
        description="Side of the square the networks work at (None: the larger image side); smaller images are "
        "fitted to it and decoder outputs fitted back. paper needs a power of two >= 16, conv a power of two >= 8.",
    )
    fit: Literal["pad", "resize"] = Field(
        "pad",
        description="How images meet the canvas: pad (centre padding with -1, cropped back) or resize "
        "(bilinear, both ways).",
    )
    preset: Literal["cpu", "paper", "mlp", "conv"] = Field(
        "cpu",
        description="Architecture: paper (the authors' 5x5 convs, a GPU setting), conv (MMVAE SVHN 4x4 convs), "
        "mlp (MMVAE MNIST), cpu (mlp for one channel on a canvas <= 32, else conv).",
    )
    loss: Literal["l1", "l2"] = Field(
        "l1", description="Per-item reconstruction loss: mean absolute (l1) or mean squared (l2) pixel error."
    )
    features: PositiveInt = Field(400, description="Hidden units of the mlp architecture (trunk output and decoder).")
    batch_norm: bool = Field(
        False,
        description="BatchNorm in the conv architecture's encoder trunks (after every layer but the first) and "
        "decoders (before every ReLU), as the paper preset has; critics never get it. Colour digits train several "
        "times faster with it. The paper preset always has it; mlp has none.",
    )

    def data_width(self) -> int:
        return self.height if self.width is None else self.width

    def canvas_side(self) -> int:
        """The canvas side the networks use: ``canvas``, or the larger image side."""
        return max(self.height, self.data_width()) if self.canvas is None else self.canvas

    def architecture(self) -> Architecture:
        """The architecture the preset stands for (``cpu`` resolves to ``mlp`` or ``conv``)."""
        if self.preset != "cpu":
            return self.preset
        return "mlp" if self.channels == 1 and self.canvas_side() <= CPU_MLP_MAX_SIDE else "conv"

    @model_validator(mode="after")
    def _check_canvas(self) -> Self:
        """Reject canvases the images or the architecture cannot use, when the spec is validated."""
        side, height, width = self.canvas_side(), self.height, self.data_width()
        if side < max(height, width):
            raise ValueError(
                f"canvas {side} is smaller than the image ({height}x{width}): canvas must be >= {max(height, width)}"
            )
        architecture = self.architecture()
        if architecture in MIN_CANVAS:
            least = MIN_CANVAS[architecture]
            if side < least or not is_power_of_two(side):
                via = f" (preset 'cpu' picks 'conv' unless channels is 1 and canvas <= {CPU_MLP_MAX_SIDE})"
                default = " (the default: the larger image side)" if self.canvas is None else ""
                raise ValueError(
                    f"canvas must be a power of two >= {least} for the {architecture!r} architecture"
                    f"{via if self.preset == 'cpu' else ''}, got {side}{default}; "
                    f"set e.g. canvas: {max(least, 2 ** math.ceil(math.log2(side)))}"
                )
        return self


class ImageModality:
    """Images ``[C, H, W]`` in [-1, 1]: trunks and decoders of one architecture, L1/L2 loss, image grids."""

    def __init__(self, params: ImageParams) -> None:
        self.params = params
        self.shape: tuple[int, ...] = (params.channels, params.height, params.data_width())
        self.value_range: tuple[float, float] = (-1.0, 1.0)
        self.architecture: Architecture = params.architecture()
        self.geometry = Geometry(params.channels, params.height, params.data_width(), params.canvas_side(), params.fit)

    def __repr__(self) -> str:
        p = self.params
        return (
            f"ImageModality(shape={self.shape}, canvas={self.geometry.side}, fit={p.fit!r}, "
            f"preset={p.preset!r} -> {self.architecture!r}, loss={p.loss!r})"
        )

    def encoder_trunk(self) -> Trunk:
        """A fresh encoder trunk ``[B, C, H, W] -> [B, out_features]``."""
        return build_trunk(
            self.architecture, self.geometry, self.params.features, critic=False, batch_norm=self.params.batch_norm
        )

    def critic_trunk(self) -> Trunk:
        """A fresh critic trunk: the encoder's layers without BatchNorm, with LeakyReLU(0.2).

        Critics see batches mixing samples of two distributions; batch statistics would leak which
        side an item came from.
        """
        return build_trunk(self.architecture, self.geometry, self.params.features, critic=True)

    def decoder(self, in_features: int) -> Decoder:
        """A fresh decoder ``[B, in_features] -> [B, C, H, W]`` with a tanh output."""
        return build_decoder(
            self.architecture, self.geometry, self.params.features, in_features, batch_norm=self.params.batch_norm
        )

    def _expected(self) -> str:
        return f"[B, {', '.join(map(str, self.shape))}]"

    def _check_batch(self, what: str, batch: Tensor) -> None:
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.shape:
            raise ValueError(f"{what} must have shape {self._expected()}, got {list(batch.shape)}")

    def reconstruction_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Per-item loss ``[B]``: mean over all pixels of the absolute (l1) or squared (l2) error."""
        return checked_item_error(output, target, self.params.loss, self._check_batch, self._expected())

    def to_grid(self, batch: Tensor, nrow: int) -> np.ndarray:
        """Render a batch as uint8 ``[H, W, 3]``, ``nrow`` items per row (fewer if the batch is smaller).

        Pixels map linearly from [-1, 1] to [0, 255] (clamped; NaN as 0); three-channel images are
        RGB, others are drawn grey (the mean over channels). Items sit in cells framed by
        ``GAP``-pixel lines of grey ``SEPARATOR``.
        """
        self._check_batch("to_grid batch", batch)
        if nrow < 1:
            raise ValueError(f"to_grid needs nrow >= 1, got {nrow}")
        n = batch.shape[0]
        if n == 0:
            raise ValueError(f"to_grid needs at least one image of shape {self._expected()} with B >= 1, got B = 0")
        images = _to_rgb8(batch)
        _, height, width = self.shape
        cols = min(nrow, n)
        rows = math.ceil(n / cols)
        grid = np.full((rows * (height + GAP) + GAP, cols * (width + GAP) + GAP, 3), SEPARATOR, dtype=np.uint8)
        for i in range(n):
            top = GAP + (i // cols) * (height + GAP)
            left = GAP + (i % cols) * (width + GAP)
            grid[top : top + height, left : left + width] = images[i]
        return grid


def _to_rgb8(batch: Tensor) -> np.ndarray:
    """``[B, C, H, W]`` in [-1, 1] to uint8 ``[B, H, W, 3]``: RGB when C is 3, else grey."""
    values = torch.nan_to_num(batch.detach().to("cpu", torch.float32), nan=-1.0)
    if values.shape[1] != 3:
        values = values.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    pixels = ((values + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).numpy()


def make_image_modality(params: ImageParams, context: BuildContext) -> ImageModality:
    """Images in [-1, 1] (conv or MLP encoders, decoders and critics; presets cpu, paper, mlp, conv)."""
    del context  # nothing here depends on the seed or device: networks are built fresh on request
    return ImageModality(params)


@hookimpl
def wynerkit_register_modalities(register: Register) -> None:
    """Register the ``image`` modality."""
    register("image", make_image_modality, params=ImageParams)
