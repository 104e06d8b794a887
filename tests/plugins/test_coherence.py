"""The ``coherence`` evaluator: the label arithmetic on hand-made cases, and whole evaluations on fake digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from digit_fakes import FakeDigits, PerfectModel, Run, tiny_wyner
from hypothesis import given
from hypothesis import strategies as st

from wynerkit import BuildContext, Evaluator
from wynerkit.testing import check_component
from wynerkit_plugins.evaluators.coherence import (
    Coherence,
    CoherenceParams,
    coherence_from_labels,
    joint_coherence_from_labels,
)
from wynerkit_plugins.shared.digit_classifier import digit_classifiers

KEYS = {
    "coherence.joint",
    "coherence.x2y",
    "coherence.y2x",
    "classifier.x.test_accuracy",
    "classifier.y.test_accuracy",
}
SMALL = {"joint_samples": 200, "batch_size": 64, "classifier_epochs": 20}


def labels(*values: int) -> torch.Tensor:
    return torch.tensor(values)


def test_conditional_coherence_counts_matching_labels():
    assert coherence_from_labels(labels(1, 2, 3), labels(1, 2, 3)) == 1.0
    assert coherence_from_labels(labels(1, 2, 3, 4), labels(1, 0, 3, 0)) == 0.5
    assert coherence_from_labels(labels(5), labels(6)) == 0.0


def test_joint_coherence_follows_the_offset_modulo_ten():
    x, y = labels(0, 9, 3, 4), labels(1, 0, 5, 4)
    assert joint_coherence_from_labels(x, y, offset=1) == 0.5  # 0->1 and 9->0 (wraps); 3->5, 4->4 do not
    assert joint_coherence_from_labels(x, y, offset=0) == 0.25
    assert joint_coherence_from_labels(x, y, offset=2) == 0.25  # 3->5


def test_mismatched_or_empty_labels_are_refused():
    with pytest.raises(ValueError):
        coherence_from_labels(labels(1, 2), labels(1))
    with pytest.raises(ValueError):
        coherence_from_labels(labels(), labels())


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=50), st.integers(0, 9))
def test_coherence_is_the_share_of_pairs_obeying_the_pairing(pairs, offset):
    x, y = (torch.tensor(side) for side in zip(*pairs, strict=True))
    expected = np.mean([(b - a) % 10 == offset for a, b in pairs])
    assert math.isclose(joint_coherence_from_labels(x, y, offset), expected)
    assert 0.0 <= coherence_from_labels(x, y) <= 1.0


@pytest.fixture(scope="module")
def fake() -> FakeDigits:
    return FakeDigits()


def test_a_perfect_model_is_fully_coherent(fake, tmp_path):
    result = Coherence(CoherenceParams(**SMALL), tmp_path).evaluate(Run(PerfectModel(fake), fake))
    assert set(result) == KEYS
    assert all(value == 1.0 for value in result.values()), result


def test_a_wrong_offset_makes_a_perfect_model_incoherent(fake, tmp_path):
    result = Coherence(CoherenceParams(**SMALL, offset=2), tmp_path).evaluate(Run(PerfectModel(fake), fake))
    assert result["coherence.joint"] == 0.0 and result["coherence.x2y"] == 1.0  # conditionals use true labels


def test_an_untrained_model_gets_seeded_values_in_the_unit_interval(builtin_host, fake, tmp_path):
    model = tiny_wyner(builtin_host)
    evaluator = Coherence(CoherenceParams(**SMALL, max_test_pairs=50), tmp_path)
    first = evaluator.evaluate(Run(model, fake, seed=3))
    assert set(first) == KEYS and all(0.0 <= v <= 1.0 for v in first.values()), first
    assert evaluator.evaluate(Run(model, fake, seed=3)) == first


def test_coherence_is_a_registered_evaluator(builtin_host):
    built = check_component(builtin_host, "evaluator", "coherence", {"joint_samples": 10})
    assert isinstance(built, Evaluator) and built.params.joint_samples == 10
    component = builtin_host.registry.get("evaluator", "coherence")
    built = component.factory(component.params(), BuildContext(registry=builtin_host.registry))
    assert built.params.joint_samples == 16384


def test_coherence_evaluates_on_mnist_mnist(builtin_host, cache_dir, tmp_path):
    """Both sides real (embedded) MNIST: the y classifier reads 1-channel 28x28 digits, cached apart from x's."""
    data = check_component(builtin_host, "dataset", "mnist-mnist", {"max_per_class": 60})
    params = CoherenceParams(**{**SMALL, "classifier_epochs": 8}, max_test_pairs=300)
    result = Coherence(params, tmp_path).evaluate(Run(PerfectModel(data), data))
    assert set(result) == KEYS and all(0.0 <= v <= 1.0 for v in result.values()), result
    assert all(v > 0.3 for v in result.values()), result  # real pairs read by weak judges (~0.5-0.75); chance: 0.1
    judges = digit_classifiers(data, params, data_root=tmp_path, device=torch.device("cpu"))  # from the cache
    assert judges["y"].net.conv1.in_channels == judges["x"].net.conv1.in_channels == 1
    cached = sorted(p.name.split("-seed")[0] for p in (cache_dir / "classifiers").glob("mnist-mnist-*.safetensors"))
    assert [name.rsplit("-", 1)[0] for name in cached] == ["mnist-mnist-x", "mnist-mnist-y"]
