"""VGG-16 in plain torch, loading torchvision's weights, for image features without torchvision.

The module keeps torchvision's parameter names (``features.0.weight`` ... ``classifier.6.bias``) so a
``vgg16`` state dict saved by torchvision (``torch.save(model.state_dict(), path)``, or as safetensors)
loads as is. Two feature layers:

- ``conv5_3``: the ReLU output of the last convolution, averaged over space: 512-d. This is what
  ``extract-features`` writes by default because the released SEM-PCYC Sketchy features are 512-d,
  but those came from networks fine-tuned on sketches and photos, so it is an approximation of them;
- ``fc7``: the second fully connected layer after its ReLU: 4096-d.

Only the layers a feature needs are built and loaded: ``classifier.*`` is ignored for ``conv5_3`` and
``classifier.6`` (the ImageNet logits) always is. Any other key, or a missing or misshapen one, is an
error naming it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

Layer = Literal["conv5_3", "fc7"]
LAYER_DIMS: Mapping[str, int] = {"conv5_3": 512, "fc7": 4096}
CONFIG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
CONV5_3_END = 30
"""``features[:30]`` ends with the ReLU of conv5_3; ``features[30]`` is the last max-pool."""
CLASSIFIER_INDICES = (0, 3, 6)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_stack() -> nn.Sequential:
    """torchvision's ``vgg16().features``: module i here is module i there, so the keys match."""
    layers: list[nn.Module] = []
    channels = 3
    for item in CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return nn.Sequential(*layers)


def torchvision_keys() -> frozenset[str]:
    """Every key of torchvision's VGG-16 state dict."""
    with torch.device("meta"):
        convs = [f"features.{i}" for i, m in enumerate(conv_stack()) if isinstance(m, nn.Conv2d)]
    modules = [*convs, *(f"classifier.{i}" for i in CLASSIFIER_INDICES)]
    return frozenset(f"{m}.{p}" for m in modules for p in ("weight", "bias"))


class VGG16Features(nn.Module):
    """VGG-16 up to one feature layer; images ``[B, 3, H, W]`` (ImageNet-normalised) -> ``[B, dim]``."""

    def __init__(self, layer: Layer = "conv5_3") -> None:
        super().__init__()
        if layer not in LAYER_DIMS:
            raise ValueError(f"unknown VGG-16 feature layer {layer!r}; choose one of {', '.join(LAYER_DIMS)}")
        self.layer = layer
        self.dim = LAYER_DIMS[layer]
        self.features = conv_stack()
        if layer == "fc7":
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(True)
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        conv5_3 = self.features[:CONV5_3_END](images)
        if self.layer == "conv5_3":
            return conv5_3.mean(dim=(2, 3))
        pooled = self.avgpool(self.features[CONV5_3_END:](conv5_3))
        return self.classifier(torch.flatten(pooled, 1))


def read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a torch file loaded with ``weights_only=True``."""
    if Path(path).suffix == ".safetensors":
        try:
            return load_file(path)
        except SafetensorError as exc:
            raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise ValueError(f"{path}: not a weights file torch can load with weights_only=True ({exc})") from exc
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict (parameter name -> tensor), found {type(state).__name__}")
    return state


def load_vgg16(path: Path, layer: Layer = "conv5_3") -> VGG16Features:
    """VGG-16 up to ``layer`` with the weights of a torchvision VGG-16 state dict, in eval mode."""
    state = read_state_dict(path)
    with torch.device("meta"):  # no random initialisation of weights that are about to be replaced
        model = VGG16Features(layer)
    wanted = model.state_dict()
    missing = sorted(wanted.keys() - state.keys())
    unexpected = sorted(state.keys() - torchvision_keys())
    if missing or unexpected:
        raise ValueError(
            f"{path}: not a torchvision VGG-16 state dict: missing keys {missing or 'none'}; "
            f"unexpected keys {unexpected or 'none'}"
        )
    misshapen = [
        f"{key} {list(state[key].shape)} (expected {list(wanted[key].shape)})"
        for key in wanted
        if state[key].shape != wanted[key].shape
    ]
    if misshapen:
        raise ValueError(f"{path}: VGG-16 weights of the wrong shape: {'; '.join(misshapen)}")
    model.load_state_dict({key: state[key].float() for key in wanted}, assign=True)
    return model.eval()


def read_image(path: Path, size: int) -> torch.Tensor:
    """An image as RGB ``[3, size, size]``, bilinearly resized and ImageNet-normalised."""
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (pixels - mean) / std


class ImageFiles(torch.utils.data.Dataset[torch.Tensor]):
    """Image files read and preprocessed on demand (so DataLoader workers can decode in parallel)."""

    def __init__(self, paths: Sequence[Path], size: int) -> None:
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return read_image(self.paths[index], self.size)


@torch.no_grad()
def extract_features(
    model: VGG16Features,
    paths: Sequence[Path],
    *,
    image_size: int = 224,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Features float32 ``[len(paths), model.dim]`` of image files, in order; ``progress(done, total)`` per batch."""
    model = model.to(device).eval()
    loader = torch.utils.data.DataLoader(ImageFiles(paths, image_size), batch_size=batch_size, num_workers=workers)
    out = np.empty((len(paths), model.dim), dtype=np.float32)
    done = 0
    for batch in loader:
        out[done : done + len(batch)] = model(batch.to(device)).float().cpu().numpy()
        done += len(batch)
        if progress is not None:
            progress(done, len(paths))
    return out
