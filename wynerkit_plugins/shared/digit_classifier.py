"""Digit classifiers that judge generated digits: the MMVAE design, trained once and cached.

The evaluators ``coherence`` and ``fd`` read generated images with a classifier per side of a paired
digit dataset: its predicted label (coherence) and its 50-d penultimate features (Fréchet distance).
The network is MMVAE's: conv(C->10, k5) maxpool ReLU, conv(10->20, k5) dropout maxpool ReLU,
fc->50 ReLU dropout, fc->10, on [-1, 1] images of any channel count and side >= 16 (28 and 32 here).

It trains on the *unique* labelled training images of one side: a paired train split repeats each
item (m random permutations), so a split that indexes into image banks (``IndexedPairs``) is deduped
by its ``x_index`` / ``y_index``; any other split is read item by item. Its test accuracy is measured
on the unique test images of that side.

Cache: ``cache_root()/classifiers/<dataset>-<side>-<key>-seed<seed>.safetensors`` with a JSON file
of metadata beside it (test accuracy, description hash, epochs, seed, weights digest); classifiers an
older wynerkit cached in ``<data root>/cache/classifiers`` are still read, never written.
``key`` hashes the dataset's name, the side's ``<side>_source`` fact of ``describe()`` and digests of
the train and test images and labels (``describe()`` does not name every setting that changes the
images, e.g. SynDigits' size and seed). A file whose metadata does not match is retrained. Both
files are written atomically; nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeInt, PositiveInt
from safetensors.torch import load, save
from torch import Tensor, nn

from wynerkit import ComponentParams, DatasetProvider
from wynerkit.atomic import write_bytes_atomic, write_json_atomic
from wynerkit.data.loading import fetch, in_order
from wynerkit.data_root import cache_root, old_cache_roots
from wynerkit.interfaces import BankedSplit

Side = Literal["x", "y"]
FORMAT = 1
"""Version of the cached files; bump it when the network or the training changes."""
LEARNING_RATE = 1e-3
TRAIN_BATCH = 128
EVAL_BATCH = 512
FEATURES = 50
"""Size of the penultimate layer: the feature space of the Fréchet distances."""


class DigitNet(nn.Module):
    """MMVAE's digit classifier for ``[B, C, H, W]`` images in [-1, 1]."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        super().__init__()
        h, w = (((side - 4) // 2 - 4) // 2 for side in (height, width))
        if h < 1 or w < 1:
            raise ValueError(f"digit classifiers need images of side >= 16, got {height}x{width}")
        self.conv1 = nn.Conv2d(channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(20 * h * w, FEATURES)
        self.fc2 = nn.Linear(FEATURES, 10)

    def features(self, images: Tensor) -> Tensor:
        """The 50-d penultimate activations (after ReLU, before dropout)."""
        h = F.relu(F.max_pool2d(self.conv1(images), 2))
        h = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(h)), 2))
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, images: Tensor) -> Tensor:
        return self.fc2(F.dropout(self.features(images), training=self.training))


@dataclass(frozen=True)
class LabelledImages:
    """The unique labelled images of one side of a split, fetched by position a batch at a time."""

    labels: Tensor
    """int64 labels of every image, in position order."""
    shape: tuple[int, ...]
    digest: str
    """sha256 of the images and labels: part of the classifier cache key."""
    _fetch: Callable[[Tensor], Tensor]

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, positions: Tensor) -> Tensor:
        """float32 images in [-1, 1] at ``positions``."""
        return self._fetch(positions)

    def batches(self, batch_size: int = EVAL_BATCH) -> Iterator[tuple[Tensor, Tensor]]:
        for start in range(0, len(self), batch_size):
            positions = torch.arange(start, min(start + batch_size, len(self)))
            yield self.images(positions), self.labels[positions]


def side_images(split: Any, side: Side) -> LabelledImages:
    """The unique labelled images of ``side`` in ``split`` (deduped through the banks of a ``BankedSplit``)."""
    if isinstance(split, BankedSplit):
        index, bank, bank_labels = (
            (split.x_index, split.x, split.x_labels) if side == "x" else (split.y_index, split.y, split.y_labels)
        )
        rows = torch.unique(index)
        labels = bank_labels[rows].long()
        transform = split.transform
        digest = _digest(bank[rows], labels)
        return _checked(
            LabelledImages(labels, tuple(bank.shape[1:]), digest, lambda p: transform(bank[rows[p]]).float())
        )
    images, labels = [], []
    for indices in in_order(split, EVAL_BATCH):  # no banks: every item of the split, as the dataset yields it
        batch = fetch(split, indices)
        images.append(batch[side].float())
        labels.append(torch.as_tensor(batch[f"{side}_label"]).long())
    stacked, labels_all = torch.cat(images), torch.cat(labels)
    return _checked(
        LabelledImages(labels_all, tuple(stacked.shape[1:]), _digest(stacked, labels_all), stacked.__getitem__)
    )


def _checked(images: LabelledImages) -> LabelledImages:
    if len(images.shape) != 3:
        raise ValueError(f"digit classifiers read images [C, H, W]; this side's items have shape {list(images.shape)}")
    if len(images) == 0:
        raise ValueError("a digit classifier needs at least one image, and the split has none")
    if images.labels.min() < 0 or images.labels.max() > 9:
        raise ValueError(
            "digit classifiers need digit labels 0-9; this dataset's items are unlabelled (-1) or not digits"
        )
    return images


def _digest(images: Tensor, labels: Tensor) -> str:
    sha = hashlib.sha256(f"{images.dtype} {list(images.shape)}".encode())
    sha.update(images.cpu().contiguous().numpy().tobytes())
    sha.update(labels.cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


class DigitClassifier:
    """A trained ``DigitNet`` in eval mode on one device, with its measured test accuracy."""

    def __init__(self, net: DigitNet, test_accuracy: float, device: torch.device) -> None:
        self.net = net.to(device).eval().requires_grad_(False)
        self.test_accuracy = test_accuracy
        self.device = device

    @torch.no_grad()
    def logits(self, images: Tensor) -> Tensor:
        """``[B, 10]`` class logits of ``[B, C, H, W]`` images in [-1, 1]."""
        return self.net(images.to(self.device, torch.float32))

    def predict(self, images: Tensor) -> Tensor:
        """The most likely digit of each image, int64 ``[B]``."""
        return self.logits(images).argmax(dim=1)

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """``[B, 50]`` penultimate features: the Fréchet distances' feature space."""
        return self.net.features(images.to(self.device, torch.float32))

    def accuracy(self, images: LabelledImages) -> float:
        correct = sum(int((self.predict(batch).cpu() == labels).sum()) for batch, labels in images.batches())
        return correct / len(images)


class ClassifierParams(ComponentParams):
    """Params shared by the evaluators that read digits with ``DigitClassifier``s."""

    batch_size: PositiveInt = Field(512, description="items per model and classifier call")
    classifier_epochs: PositiveInt = Field(15, description="training epochs of each digit classifier (MMVAE: ~15)")
    classifier_seed: NonNegativeInt = Field(
        0, description="seed of the classifiers' initialisation and batch order (fixed: every run gets the same judge)"
    )
    offset: NonNegativeInt | None = Field(
        None, lt=10, description="y's digit is (x's digit + offset) mod 10; None: the dataset's describe()['offset']"
    )


def dataset_offset(data: DatasetProvider, offset: int | None) -> int:
    """The pairing offset: the explicit one, else the dataset's ``describe()["offset"]``."""
    if offset is not None:
        return offset
    described = data.describe().get("offset")
    if not isinstance(described, int):
        raise ValueError("the dataset's describe() has no integer 'offset'; set the evaluator's offset explicitly")
    return described % 10


def classifier_file(
    data: DatasetProvider, side: Side, train: LabelledImages, test: LabelledImages, seed: int
) -> tuple[Path, str]:
    """The classifier's file of one side, relative to a cache root, and the full hash of what it was trained on."""
    facts = data.describe()
    name = str(facts.get("name", "dataset"))
    described = {
        "name": name,
        "side": side,
        "source": facts.get(f"{side}_source"),
        "shape": list(train.shape),
        "train": train.digest,
        "test": test.digest,
    }
    full = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()
    return Path("classifiers") / f"{name}-{side}-{full[:12]}-seed{seed}.safetensors", full


def load_or_train(
    data: DatasetProvider, side: Side, *, data_root: Path, epochs: int, seed: int, device: torch.device
) -> DigitClassifier:
    """The cached classifier of ``side`` if its metadata matches, else a freshly trained (and cached) one."""
    train, test = side_images(data.split("train"), side), side_images(data.split("test"), side)
    relative, description = classifier_file(data, side, train, test, seed)
    expected = {"format": FORMAT, "description_sha256": description, "epochs": epochs, "seed": seed}
    for root in (cache_root(), *old_cache_roots(data_root)):
        cached = _load(root / relative, expected, train.shape)
        if cached is not None:
            return DigitClassifier(cached[0], cached[1], device)
    path = cache_root() / relative
    label = f"classifier {path.stem}"
    net = train_net(train, epochs=epochs, seed=seed, device=device, label=label)
    classifier = DigitClassifier(net, 0.0, device)
    classifier.test_accuracy = classifier.accuracy(test)
    weights = save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})
    write_bytes_atomic(path, weights)
    meta = {
        **expected,
        "test_accuracy": classifier.test_accuracy,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    write_json_atomic(path.with_suffix(".json"), {**meta, "train_images": len(train), "test_images": len(test)})
    print(
        f"{label}: test accuracy {classifier.test_accuracy:.4f} on {len(test)} images; cached in {path}",
        file=sys.stderr,
        flush=True,
    )
    return classifier


def _load(path: Path, expected: dict[str, Any], shape: tuple[int, ...]) -> tuple[DigitNet, float] | None:
    """The cached net and its test accuracy, or None when absent, stale or damaged (then it is retrained)."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        weights = path.read_bytes()
        if (
            any(meta.get(k) != v for k, v in expected.items())
            or meta.get("weights_sha256") != hashlib.sha256(weights).hexdigest()
        ):
            return None
        net = DigitNet(shape[0], shape[1], shape[2])
        net.load_state_dict(load(weights))
        return net, float(meta["test_accuracy"])
    except (ValueError, KeyError, RuntimeError, OSError):
        return None


def train_net(images: LabelledImages, *, epochs: int, seed: int, device: torch.device, label: str) -> DigitNet:
    """Adam on cross-entropy, batches of 128 in a seeded order; dropout draws from a seeded global RNG.

    Gradients are enabled here: evaluators run under ``torch.no_grad()`` and train classifiers lazily.
    """
    order_rng = torch.Generator().manual_seed(seed)
    with seeded_global_rng(seed, device), torch.enable_grad():
        net = DigitNet(*images.shape).to(device)
        optimiser = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
        start = time.monotonic()
        for epoch in range(1, epochs + 1):
            total, count = 0.0, 0
            for positions in torch.randperm(len(images), generator=order_rng).split(TRAIN_BATCH):
                loss = F.cross_entropy(net(images.images(positions).to(device)), images.labels[positions].to(device))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total, count = total + float(loss.detach()) * len(positions), count + len(positions)
            elapsed = time.monotonic() - start
            print(
                f"{label}: epoch {epoch}/{epochs} loss {total / count:.4f} ({elapsed:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return net.eval()


@contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """torch's global RNG (CPU, and the device's on CUDA) seeded for the block, then restored."""
    on_cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if on_cuda else [], device_type="cuda"):
        torch.random.default_generator.manual_seed(seed)  # not torch.manual_seed: other GPUs keep their state
        if on_cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


def digit_classifiers(
    data: DatasetProvider, params: ClassifierParams, *, data_root: Path, device: torch.device
) -> dict[Side, DigitClassifier]:
    """The classifiers of both sides, loaded from the cache or trained."""
    return {
        side: load_or_train(
            data, side, data_root=data_root, epochs=params.classifier_epochs, seed=params.classifier_seed, device=device
        )
        for side in ("x", "y")
    }


def chunks(total: int, size: int) -> Iterator[int]:
    """Sizes of consecutive batches covering ``total`` items."""
    for start in range(0, total, size):
        yield min(size, total - start)
