"""Digit classifiers: the MMVAE network, unique training images, training, and the safetensors cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from digit_fakes import FakeDigits, PlainDigits

import wynerkit_plugins.shared.digit_classifier as dc
from wynerkit.data_root import CACHE_ENV

EPOCHS = 20  # what the fake digits need for a perfect test accuracy (about a second)
CPU = torch.device("cpu")


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "classifiers"


@pytest.fixture
def count_training(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each training run (by label)."""
    calls: list[str] = []
    real = dc.train_net

    def counted(*args, **kwargs):
        calls.append(kwargs["label"])
        return real(*args, **kwargs)

    monkeypatch.setattr(dc, "train_net", counted)
    return calls


@pytest.mark.parametrize(("channels", "side"), [(1, 28), (3, 32), (3, 16), (2, 20)])
def test_network_gives_ten_logits_and_fifty_features(channels, side):
    classifier = dc.DigitClassifier(dc.DigitNet(channels, side, side), 0.0, CPU)
    images = torch.rand(4, channels, side, side) * 2 - 1
    assert classifier.logits(images).shape == (4, 10)
    features = classifier.features(images)
    assert features.shape == (4, dc.FEATURES) and (features >= 0).all()  # after ReLU
    assert classifier.predict(images).dtype == torch.int64


def test_images_smaller_than_sixteen_pixels_are_refused():
    with pytest.raises(ValueError, match="side >= 16"):
        dc.DigitNet(1, 15, 15)


def test_training_images_are_the_unique_bank_rows_of_a_split():
    data = FakeDigits()
    train = data.split("train")
    images = dc.side_images(train, "x")
    assert len(train) == 2 * len(images) == 2 * 600  # the split repeats each x twice
    assert torch.equal(images.labels, train.x_labels)
    first = images.images(torch.tensor([0, 599]))
    assert first.dtype == torch.float32 and first.shape == (2, 1, 16, 16) and first.abs().max() <= 1
    plain = dc.side_images(PlainDigits().split("train"), "x")  # no banks: every item, as yielded
    assert len(plain) == len(train) and plain.digest != images.digest
    assert dc.side_images(FakeDigits().split("train"), "x").digest == images.digest
    assert dc.side_images(FakeDigits(seed=1).split("train"), "x").digest != images.digest


def test_unlabelled_items_are_refused():
    split = FakeDigits().split("test")
    split.y_labels = torch.full_like(split.y_labels, -1)
    with pytest.raises(ValueError, match="unlabelled"):
        dc.side_images(split, "y")


def test_offset_comes_from_the_dataset_unless_given():
    data = FakeDigits(offset=3)
    assert dc.dataset_offset(data, None) == 3 and dc.dataset_offset(data, 0) == 0
    data.describe = lambda: {"name": "no-offset"}
    with pytest.raises(ValueError, match="offset"):
        dc.dataset_offset(data, None)


def test_a_classifier_is_trained_once_then_loaded_from_the_cache(private_cache, count_training):
    data = FakeDigits()
    first = dc.load_or_train(data, "x", data_root=Path("unused"), epochs=EPOCHS, seed=0, device=CPU)
    assert first.test_accuracy == 1.0
    (weights,) = private_cache.glob("*.safetensors")
    assert weights.name.startswith("fake-digits-x-") and weights.name.endswith("-seed0.safetensors")
    meta = json.loads(weights.with_suffix(".json").read_text())
    assert meta["epochs"] == EPOCHS and meta["seed"] == 0 and meta["test_accuracy"] == 1.0
    again = dc.load_or_train(data, "x", data_root=Path("unused"), epochs=EPOCHS, seed=0, device=CPU)
    assert len(count_training) == 1 and again.test_accuracy == 1.0
    images = torch.rand(3, 1, 16, 16) * 2 - 1
    assert torch.equal(first.logits(images), again.logits(images))


def test_a_classifier_trains_inside_no_grad_as_evaluators_run(private_cache):
    """The evaluation core runs evaluators under torch.no_grad(); lazy classifier training must still learn."""
    data = FakeDigits()
    with torch.no_grad():
        trained = dc.load_or_train(data, "y", data_root=Path("unused"), epochs=EPOCHS, seed=0, device=CPU)
    assert trained.test_accuracy == 1.0


def test_mismatched_or_damaged_cache_files_are_retrained(private_cache, count_training):
    data = FakeDigits()

    def load(epochs: int = 2) -> dc.DigitClassifier:
        return dc.load_or_train(data, "y", data_root=Path("unused"), epochs=epochs, seed=0, device=CPU)

    load()
    (weights,) = private_cache.glob("*.safetensors")
    meta_path = weights.with_suffix(".json")
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "description_sha256": "other data"}))
    load()
    assert len(count_training) == 2
    load(epochs=3)  # other settings: the same file, retrained
    assert len(count_training) == 3 and json.loads(meta_path.read_text())["epochs"] == 3
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)  # damaged weights fail the digest
    load(epochs=3)
    assert len(count_training) == 4
    load(epochs=3)
    assert len(count_training) == 4  # the repaired file loads
    assert sorted(p.name for p in private_cache.iterdir()) == sorted([weights.name, meta_path.name])  # no temp files


def test_training_is_seeded_and_leaves_the_global_rng_alone(tmp_path):
    images = dc.side_images(FakeDigits().split("train"), "x")
    state = torch.random.get_rng_state()
    nets = [dc.train_net(images, epochs=1, seed=seed, device=CPU, label="t") for seed in (5, 5, 6)]
    assert torch.equal(torch.random.get_rng_state(), state)
    same, other = (torch.equal(nets[0].fc2.weight, nets[i].fc2.weight) for i in (1, 2))
    assert same and not other
