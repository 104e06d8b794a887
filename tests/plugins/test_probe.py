"""The probe evaluator: a linear classifier on z codes of the train split, scored on the test split."""

from __future__ import annotations

import pytest
import torch
from eval_fakes import CodeModel, evaluate, labelled_pairs
from hypothesis import given, settings
from hypothesis import strategies as st

from wynerkit.evaluation.evaluate import EvaluationFailed
from wynerkit_plugins.evaluators.probe import KEYS

SIZES = {"train": 400, "valid": 10, "test": 300}
DATA = labelled_pairs(SIZES)


def test_codes_that_are_the_label_one_hot_are_read_perfectly(builtin_host, tmp_path):
    # z is x's (or y's) one-hot label: every encoder reveals the class linearly
    metrics = evaluate(builtin_host, "probe", CodeModel(12, 10), DATA, tmp_path)
    assert metrics == {key: 1.0 for key in KEYS}


def test_random_codes_score_near_chance(builtin_host, tmp_path):
    model = CodeModel(12, 10, code=lambda features: torch.randn(features.shape))  # global RNG, seeded by the core
    metrics = evaluate(builtin_host, "probe", model, DATA, tmp_path)
    assert set(metrics) == set(KEYS)
    assert all(0.0 <= value <= 0.2 for value in metrics.values()), metrics  # chance is 0.1


def test_the_probe_is_deterministic_and_honours_max_train(builtin_host, tmp_path):
    noisy = CodeModel(12, 10, code=lambda features: features + 1.5 * torch.randn(features.shape))
    first = evaluate(builtin_host, "probe", noisy, DATA, tmp_path / "a", max_train=50, iterations=30)
    again = evaluate(builtin_host, "probe", noisy, DATA, tmp_path / "b", max_train=50, iterations=30)
    more = evaluate(builtin_host, "probe", noisy, DATA, tmp_path / "c", max_train=400, iterations=30)
    assert first == again
    assert first != more


@settings(max_examples=8, deadline=None)
@given(
    scale=st.floats(min_value=1e-2, max_value=1e2),
    shift=st.floats(min_value=-10.0, max_value=10.0),
)
def test_accuracy_does_not_depend_on_the_units_of_z(builtin_host, tmp_path_factory, scale, shift):
    # codes are standardised with the training statistics: an affine change of units changes nothing
    def noisy(features):
        return features + 0.8 * torch.sin(7.0 * features.sum(1, keepdim=True) + torch.arange(features.shape[1]))

    base = evaluate(builtin_host, "probe", CodeModel(12, 10, code=noisy), DATA, tmp_path_factory.mktemp("base"))
    moved = CodeModel(12, 10, code=lambda features: scale * noisy(features) + shift)
    assert evaluate(builtin_host, "probe", moved, DATA, tmp_path_factory.mktemp("moved")) == pytest.approx(
        base, abs=0.01
    )


def test_a_dataset_without_labels_is_refused_naming_it(builtin_host, tmp_path):
    unlabelled = labelled_pairs(SIZES, name="no-labels")
    for split in unlabelled.splits.values():
        split.x_label = torch.full_like(split.x_label, -1)
    with pytest.raises(EvaluationFailed, match=r"probe.*'no-labels'.*x_label") as failed:
        evaluate(builtin_host, "probe", CodeModel(12, 10), unlabelled, tmp_path)
    assert list(failed.value.failures) == ["probe"]
    assert not (tmp_path / "summary.json").exists()
