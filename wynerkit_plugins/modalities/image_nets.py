"""Network builders of the ``image`` modality: trunks and decoders for the ``paper``, ``conv`` and ``mlp`` presets.

Networks work on a square canvas of side ``Geometry.side``; data may be smaller (MNIST 28x28 on a
32x32 canvas). Trunks fit data-shaped batches to the canvas first, decoders fit their canvas-sized
output back to the data shape last, so callers only ever see data-shaped images.

One builder per network part: ``conv_stack`` serves encoder and critic trunks of both convolutional
presets (a flag drops BatchNorm and picks LeakyReLU for critics), ``conv_decoder`` both decoders.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional

FitMode = Literal["pad", "resize"]
Architecture = Literal["paper", "conv", "mlp"]

LEAKY_SLOPE = 0.2
BACKGROUND = -1.0
"""Value of the padding around data on the canvas: black in [-1, 1] images."""
PAPER_WIDTHS = (32, 64, 128, 256)
PAPER_DECODER_WIDTHS = (512, 256, 128)
CONV_BASE = 32
CONV_END_SIDE = 4
"""Side of the last feature map of the ``conv`` preset (MMVAE SVHN: 4x4)."""
MIN_CANVAS: dict[Architecture, int] = {"paper": 16, "conv": 2 * CONV_END_SIDE}
"""Smallest canvas of each convolutional architecture; their canvas must also be a power of two."""


def _centre(current: int, size: int) -> tuple[int, int]:
    """Padding (positive) or cropping (negative) before and after, centring ``current`` in ``size``.

    Cropping removes exactly what padding the other way added, so pad-then-crop is the identity.
    """
    diff = size - current
    before = diff // 2 if diff >= 0 else -((-diff) // 2)
    return before, diff - before


class Fit(nn.Module):
    """Map ``[B, C, *source]`` images to ``[B, C, *target]``: centre pad with -1 / crop, or bilinear resize."""

    def __init__(self, channels: int, source: tuple[int, int], target: tuple[int, int], mode: FitMode) -> None:
        super().__init__()
        self.channels, self.source, self.target, self.mode = channels, source, target, mode

    def extra_repr(self) -> str:
        return f"{self.source} -> {self.target}, mode={self.mode!r}"

    def forward(self, batch: Tensor) -> Tensor:
        if batch.ndim != 4 or tuple(batch.shape[1:]) != (self.channels, *self.source):
            raise ValueError(
                f"expected a batch of shape [B, {self.channels}, {self.source[0]}, {self.source[1]}], "
                f"got {list(batch.shape)}"
            )
        if self.source == self.target:
            return batch
        if self.mode == "resize":
            shrinking = any(t < s for s, t in zip(self.source, self.target, strict=True))
            # antialiased resizing has no CPU kernel for bfloat16 / float16 (bf16 autocast): resize in float32
            low = batch.dtype in (torch.bfloat16, torch.float16)
            resized = functional.interpolate(
                batch.float() if low else batch,
                size=self.target,
                mode="bilinear",
                align_corners=False,
                antialias=shrinking,
            )
            return resized.to(batch.dtype)
        top, bottom = _centre(self.source[0], self.target[0])
        left, right = _centre(self.source[1], self.target[1])
        return functional.pad(batch, (left, right, top, bottom), value=BACKGROUND)


@dataclass(frozen=True)
class Geometry:
    """The data shape ``(channels, height, width)``, the canvas side the networks use, and how to fit."""

    channels: int
    height: int
    width: int
    side: int
    fit: FitMode

    @property
    def flat(self) -> int:
        """Number of values in one canvas-sized image."""
        return self.channels * self.side * self.side

    def to_canvas(self) -> Fit:
        return Fit(self.channels, (self.height, self.width), (self.side, self.side), self.fit)

    def to_data(self) -> Fit:
        return Fit(self.channels, (self.side, self.side), (self.height, self.width), self.fit)


class Trunk(nn.Sequential):
    """A feature extractor ``[B, C, H, W] -> [B, out_features]`` (a ``wynerkit.FeatureNet``)."""

    def __init__(self, geometry: Geometry, body: Sequence[nn.Module], out_features: int) -> None:
        super().__init__(geometry.to_canvas(), *body, nn.Flatten())
        self.out_features = int(out_features)


class Decoder(nn.Sequential):
    """A decoder ``[B, in_features] -> [B, C, H, W]`` with values in [-1, 1] (tanh output)."""

    def __init__(self, geometry: Geometry, in_features: int, body: Sequence[nn.Module]) -> None:
        super().__init__(*body, nn.Tanh(), geometry.to_data())
        self.in_features = int(in_features)


def _activation(leaky: bool) -> nn.Module:
    return nn.LeakyReLU(LEAKY_SLOPE) if leaky else nn.ReLU()


def conv_stack(
    in_channels: int, widths: Sequence[int], *, kernel: int, padding: int, batch_norm: bool, leaky: bool
) -> list[nn.Module]:
    """Stride-2 convolutions through ``widths``, each followed by an activation.

    With ``batch_norm``, BatchNorm follows every layer but the first (DCGAN practice, as in the
    authors' code). Critics pass ``batch_norm=False``: their batches mix two distributions, and
    batch statistics would leak which side an item came from.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise([in_channels, *widths])):
        layers.append(nn.Conv2d(n_in, n_out, kernel, stride=2, padding=padding))
        if batch_norm and i > 0:
            layers.append(nn.BatchNorm2d(n_out))
        layers.append(_activation(leaky))
    return layers


def conv_decoder(
    geometry: Geometry,
    in_features: int,
    widths: Sequence[int],
    *,
    start_side: int,
    kernel: int,
    padding: int,
    output_padding: int,
    batch_norm: bool,
) -> Decoder:
    """Linear to ``widths[0]`` maps of ``start_side``, then stride-2 transposed convs to C channels.

    BatchNorm (when asked) and ReLU follow the linear layer and every transposed conv but the last,
    whose output goes through tanh.
    """
    body: list[nn.Module] = [
        nn.Linear(in_features, widths[0] * start_side * start_side),
        nn.Unflatten(1, (widths[0], start_side, start_side)),
    ]
    channels = [*widths, geometry.channels]
    for n_in, n_out in itertools.pairwise(channels):
        if batch_norm:
            body.append(nn.BatchNorm2d(n_in))
        body.append(nn.ReLU())
        body.append(nn.ConvTranspose2d(n_in, n_out, kernel, stride=2, padding=padding, output_padding=output_padding))
    return Decoder(geometry, in_features, body)


def paper_trunk(geometry: Geometry, *, critic: bool) -> Trunk:
    """The authors' 4 convs (kernel 5, stride 2) 32-64-128-256; 1024 features on a 32x32 canvas."""
    body = conv_stack(geometry.channels, PAPER_WIDTHS, kernel=5, padding=2, batch_norm=not critic, leaky=True)
    return Trunk(geometry, body, PAPER_WIDTHS[-1] * (geometry.side // 16) ** 2)


def paper_decoder(geometry: Geometry, in_features: int) -> Decoder:
    """The authors' decoder: linear to 512 x side/8 x side/8, transposed convs 512-256-128-C, tanh."""
    return conv_decoder(
        geometry,
        in_features,
        PAPER_DECODER_WIDTHS,
        start_side=geometry.side // 8,
        kernel=5,
        padding=2,
        output_padding=1,
        batch_norm=True,
    )


def _conv_widths(side: int) -> list[int]:
    """MMVAE widths 32-64-128-...: one stride-2 layer per halving from ``side`` down to 4."""
    layers = (side // CONV_END_SIDE).bit_length() - 1
    return [CONV_BASE * 2**i for i in range(layers)]


def conv_trunk(geometry: Geometry, *, critic: bool, batch_norm: bool = False) -> Trunk:
    """MMVAE SVHN-style convs (kernel 4, stride 2) down to 4x4: ReLU for encoders, LeakyReLU for critics.

    ``batch_norm`` adds BatchNorm after every layer but the first (encoders only; critics never).
    """
    widths = _conv_widths(geometry.side)
    body = conv_stack(
        geometry.channels, widths, kernel=4, padding=1, batch_norm=batch_norm and not critic, leaky=critic
    )
    return Trunk(geometry, body, widths[-1] * CONV_END_SIDE**2)


def conv_preset_decoder(geometry: Geometry, in_features: int, batch_norm: bool = False) -> Decoder:
    """Linear to the trunk's last width at 4x4, then transposed convs (kernel 4, stride 2) back to the canvas."""
    widths = _conv_widths(geometry.side)[::-1]
    return conv_decoder(
        geometry,
        in_features,
        widths,
        start_side=CONV_END_SIDE,
        kernel=4,
        padding=1,
        output_padding=0,
        batch_norm=batch_norm,
    )


def mlp_trunk(geometry: Geometry, features: int, *, critic: bool) -> Trunk:
    """MMVAE MNIST-style: flatten, one hidden layer of ``features`` units (LeakyReLU for critics)."""
    body = [nn.Flatten(), nn.Linear(geometry.flat, features), _activation(critic)]
    return Trunk(geometry, body, features)


def mlp_decoder(geometry: Geometry, features: int, in_features: int) -> Decoder:
    """One hidden layer of ``features`` units, then a linear layer to the canvas pixels (tanh)."""
    body = [
        nn.Linear(in_features, features),
        nn.ReLU(),
        nn.Linear(features, geometry.flat),
        nn.Unflatten(1, (geometry.channels, geometry.side, geometry.side)),
    ]
    return Decoder(geometry, in_features, body)


def build_trunk(
    architecture: Architecture, geometry: Geometry, features: int, *, critic: bool, batch_norm: bool = False
) -> Trunk:
    """A fresh trunk of one architecture; ``critic`` drops BatchNorm and uses LeakyReLU.

    ``batch_norm`` switches BatchNorm on in the ``conv`` architecture (``paper`` always has it).
    """
    if architecture == "paper":
        return paper_trunk(geometry, critic=critic)
    if architecture == "conv":
        return conv_trunk(geometry, critic=critic, batch_norm=batch_norm)
    return mlp_trunk(geometry, features, critic=critic)


def build_decoder(
    architecture: Architecture, geometry: Geometry, features: int, in_features: int, *, batch_norm: bool = False
) -> Decoder:
    """A fresh decoder of one architecture, mapping ``[B, in_features]`` to data-shaped images."""
    if in_features < 1:
        raise ValueError(f"decoder needs in_features >= 1, got {in_features}")
    if architecture == "paper":
        return paper_decoder(geometry, in_features)
    if architecture == "conv":
        return conv_preset_decoder(geometry, in_features, batch_norm)
    return mlp_decoder(geometry, features, in_features)


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0
