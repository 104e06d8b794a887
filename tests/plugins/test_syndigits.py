"""SynDigits, the SVHN stand-in: shapes, determinism, variety, legibility, the cache, and a domain gap to MNIST."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from wynerkit_plugins.datasets import syndigits
from wynerkit_plugins.datasets.syndigits import (
    CHUNK,
    describe_syndigits,
    generate_syndigits,
    load_or_generate_syndigits,
    syndigits_cache_path,
    syndigits_fonts,
)

N = CHUNK + 44  # one full chunk and a partial one


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    return generate_syndigits(N, seed=7)


@pytest.fixture(scope="module")
def large() -> tuple[np.ndarray, np.ndarray]:
    return generate_syndigits(5000, seed=11)


def test_shapes_dtypes_and_label_range(small: tuple[np.ndarray, np.ndarray]):
    images, labels = small
    assert images.shape == (N, 32, 32, 3)
    assert images.dtype == np.uint8
    assert labels.shape == (N,)
    assert labels.dtype == np.int64
    assert labels.min() >= 0
    assert labels.max() <= 9


def test_zero_images_is_allowed():
    images, labels = generate_syndigits(0, seed=0)
    assert images.shape == (0, 32, 32, 3)
    assert labels.shape == (0,)


@pytest.mark.parametrize("bad", [{"n": -1}, {"seed": -1}, {"batch_size": 0}])
def test_rejects_negative_sizes_and_seeds(bad: dict[str, int]):
    with pytest.raises(ValueError, match="need n >= 0"):
        generate_syndigits(**{"n": 4, "seed": 0, **bad})


def test_same_seed_gives_the_same_bytes_and_another_seed_differs(small: tuple[np.ndarray, np.ndarray]):
    images, labels = generate_syndigits(N, seed=7)
    assert images.tobytes() == small[0].tobytes()
    assert labels.tobytes() == small[1].tobytes()
    other_images, other_labels = generate_syndigits(N, seed=8)
    assert not np.array_equal(other_images, images)
    assert not np.array_equal(other_labels, labels)


def test_more_images_extend_fewer_without_changing_them(small: tuple[np.ndarray, np.ndarray]):
    images, labels = generate_syndigits(N + CHUNK + 5, seed=7)
    np.testing.assert_array_equal(images[:N], small[0])
    np.testing.assert_array_equal(labels[:N], small[1])


@pytest.mark.parametrize("batch_size", [1, CHUNK + 1, 10_000])
def test_batch_size_does_not_change_the_output(small: tuple[np.ndarray, np.ndarray], batch_size: int):
    images, labels = generate_syndigits(N, seed=7, batch_size=batch_size)
    np.testing.assert_array_equal(images, small[0])
    np.testing.assert_array_equal(labels, small[1])


def test_labels_are_roughly_uniform(large: tuple[np.ndarray, np.ndarray]):
    counts = np.bincount(large[1], minlength=10)
    assert counts.min() > 400, counts
    assert counts.max() < 600, counts


def test_images_vary_within_and_across(large: tuple[np.ndarray, np.ndarray]):
    images = large[0].astype(np.float64)
    per_image_std = images.reshape(len(images), -1).std(axis=1)
    assert per_image_std.min() > 5
    assert np.median(per_image_std) > 20
    assert len({image.tobytes() for image in large[0]}) == len(images)
    mean_colours = images.mean(axis=(1, 2))
    assert (mean_colours.std(axis=0) > 20).all(), "backgrounds should span many colours"


def _grey_centred(images: np.ndarray) -> np.ndarray:
    """Luminance, standardised per image, signed so the digit is bright whatever its colour.

    The border is mostly background, so its mean tells the polarity.
    """
    grey = (images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).reshape(len(images), -1)
    grey = (grey - grey.mean(axis=1, keepdims=True)) / grey.std(axis=1, keepdims=True)
    square = grey.reshape(-1, 32, 32)
    border = np.concatenate([square[:, :3].reshape(len(images), -1), square[:, -3:].reshape(len(images), -1)], axis=1)
    return grey * -np.sign(border.mean(axis=1, keepdims=True))


def test_centre_digit_is_legible_to_a_linear_probe(large: tuple[np.ndarray, np.ndarray]):
    """A ridge classifier on normalised grey pixels reads the centre digit far above chance.

    A cheap proxy for legibility: it fails if the centre digit drowns in noise, contrast or
    neighbours. The slow CNN test below is the real check.
    """
    images, labels = large
    features = np.concatenate([_grey_centred(images), np.ones((len(images), 1))], axis=1)
    train, test = slice(0, 4000), slice(4000, None)
    targets = np.eye(10)[labels[train]]
    gram = features[train].T @ features[train] + 100.0 * np.eye(features.shape[1])
    weights = np.linalg.solve(gram, features[train].T @ targets)
    accuracy = float(((features[test] @ weights).argmax(axis=1) == labels[test]).mean())
    assert accuracy > 0.5, accuracy


def test_centre_has_contrast(large: tuple[np.ndarray, np.ndarray]):
    grey = large[0][:, 8:24, 8:24].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    spread = np.percentile(grey.reshape(len(grey), -1), 95, axis=1) - np.percentile(
        grey.reshape(len(grey), -1), 5, axis=1
    )
    assert np.mean(spread > 40) > 0.99, np.percentile(spread, [0.1, 1, 10])


def test_fonts_are_many_distinct_faces_and_describable():
    fonts = syndigits_fonts()
    assert len(fonts) >= 15
    assert len({f.name for f in fonts}) == len(fonts)
    assert all(Path(f.path).is_file() for f in fonts)
    description = json.loads(json.dumps(describe_syndigits()))
    assert description["n_fonts"] == len(fonts)
    assert description["version"] == syndigits.VERSION
    assert len(description["fonts_digest"]) == 64


def test_faces_without_usable_lining_digits_are_skipped():
    """matplotlib ships fonts whose digit code points are blank (STIX size variants, Display), a
    .notdef box (Last Resort), symbols (cmsy10, cmex10) or old-style figures (cmmi10)."""
    names = " ".join(f.name for f in syndigits_fonts())
    for rejected in ("Last Resort", "STIXSize", "STIXNonUnicode", "Display", "cmsy10", "cmex10", "cmmi10"):
        assert rejected not in names
    assert "DejaVu Sans Bold" in names
    assert "cmr10" in names


def test_colours_keep_the_minimum_contrast():
    fg, bg = syndigits._contrasting_colours(np.random.default_rng(0), 20_000)
    luma = np.array([0.299, 0.587, 0.114])
    assert np.abs((fg - bg) @ luma).min() >= syndigits._MIN_CONTRAST - 1e-12
    assert fg.min() >= 0
    assert bg.min() >= 0
    assert fg.max() <= 1
    assert bg.max() <= 1


def test_cache_round_trip_loads_the_file_the_second_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    images, labels = load_or_generate_syndigits(tmp_path, 40, seed=3)
    path = syndigits_cache_path(tmp_path, 40, seed=3)
    assert path == tmp_path / "syndigits" / f"syndigits-v{syndigits.VERSION}-n40-seed3.npz"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "no temporary files left behind"

    def no_generation(n: int, seed: int, *, batch_size: int = 0) -> tuple[np.ndarray, np.ndarray]:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(syndigits, "generate_syndigits", no_generation)
    cached_images, cached_labels = load_or_generate_syndigits(tmp_path, 40, seed=3)
    np.testing.assert_array_equal(cached_images, images)
    np.testing.assert_array_equal(cached_labels, labels)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong-size", "other-fonts"])
def test_a_damaged_or_stale_cache_file_is_regenerated(tmp_path: Path, damage: str):
    images, labels = generate_syndigits(40, seed=3)
    digest = describe_syndigits()["fonts_digest"]
    path = syndigits_cache_path(tmp_path, 40, seed=3)
    load_or_generate_syndigits(tmp_path, 40, seed=3)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file")
    elif damage == "wrong-size":
        np.savez(path, images=images[:10], labels=labels[:10], fonts_digest=digest)
    else:
        np.savez(path, images=images, labels=labels, fonts_digest="0" * 64)
    loaded_images, loaded_labels = load_or_generate_syndigits(tmp_path, 40, seed=3)
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)
    with np.load(path, allow_pickle=False) as data:  # and the file was replaced by a good one
        np.testing.assert_array_equal(data["images"], images)
        assert str(data["fonts_digest"]) == digest


# -- slow: does a CNN read the digits, and is there a domain gap to MNIST? --------------------------------------------


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, C] -> float [N, C, H, W] in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def _train_cnn(x: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int = 0) -> nn.Module:
    """A small CNN (2 conv + 2 fc) trained with Adam: the same recipe for either domain."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(128):
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    predictions = torch.cat([model(batch).argmax(dim=1) for batch in x.split(1000)])
    return float((predictions == y).float().mean())


@pytest.mark.slow
def test_a_small_cnn_reads_syndigits():
    train_images, train_labels = generate_syndigits(20_000, seed=1)
    test_images, test_labels = generate_syndigits(5_000, seed=2)
    model = _train_cnn(_to_tensor(train_images), torch.from_numpy(train_labels), epochs=4)
    accuracy = _accuracy(model, _to_tensor(test_images), torch.from_numpy(test_labels))
    print(f"SynDigits-trained CNN, held-out SynDigits accuracy: {accuracy:.4f}")
    assert accuracy >= 0.95


def _mnist(split: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits as [-1, 1] 3-channel 32x32 tensors (zero-padded, grey replicated), the usual SVHN-sized form."""
    root = Path(os.environ.get("WYNERKIT_DATA", "")) / "mnist"
    images_path, labels_path = root / f"{split}-images-idx3-ubyte.gz", root / f"{split}-labels-idx1-ubyte.gz"
    if not os.environ.get("WYNERKIT_DATA") or not (images_path.is_file() and labels_path.is_file()):
        pytest.skip("needs MNIST under $WYNERKIT_DATA/mnist")
    images = np.frombuffer(gzip.decompress(images_path.read_bytes()), np.uint8, offset=16).reshape(-1, 28, 28)
    labels = np.frombuffer(gzip.decompress(labels_path.read_bytes()), np.uint8, offset=8).astype(np.int64)
    padded = np.pad(images[:count], ((0, 0), (2, 2), (2, 2)))
    return _to_tensor(np.repeat(padded[..., None], 3, axis=3)), torch.from_numpy(labels[:count])


@pytest.mark.slow
def test_mnist_trained_cnn_does_clearly_worse_on_syndigits():
    train_x, train_y = _mnist("train", 20_000)
    test_x, test_y = _mnist("t10k", 5_000)
    model = _train_cnn(train_x, train_y, epochs=3)
    syn_images, syn_labels = generate_syndigits(5_000, seed=2)
    on_mnist = _accuracy(model, test_x, test_y)
    on_syndigits = _accuracy(model, _to_tensor(syn_images), torch.from_numpy(syn_labels))
    print(f"MNIST-trained CNN accuracy: MNIST test {on_mnist:.4f}, SynDigits {on_syndigits:.4f}")
    assert on_mnist >= 0.95
    assert on_syndigits < on_mnist - 0.3
