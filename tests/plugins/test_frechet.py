"""The ``fd`` evaluator: the Fréchet distance against scipy and closed forms, moments, whole evaluations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from digit_fakes import FakeDigits, PerfectModel, Run, tiny_wyner
from hypothesis import given, settings
from hypothesis import strategies as st

from wynerkit import Evaluator
from wynerkit.testing import check_component
from wynerkit_plugins.evaluators.frechet import FrechetDistance, FrechetParams, Moments, frechet_distance

SMALL = {"joint_samples": 128, "batch_size": 64, "classifier_epochs": 20, "conditions_per_class": 3}
SMALL |= {"samples_per_condition": 4}


def gaussian(rng: np.random.Generator, d: int, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A random mean and a random positive semi-definite covariance (of the given rank)."""
    a = rng.normal(size=(d, rank or d))
    return rng.normal(size=d), a @ a.T + (0 if rank else 0.1 * np.eye(d))


def scipy_fd(mu1, cov1, mu2, cov2) -> float:
    root = scipy.linalg.sqrtm(cov1 @ cov2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root).real)


@pytest.mark.parametrize("d", [1, 2, 5, 20, 50])
def test_matches_scipy_sqrtm_on_random_gaussians(d):
    rng = np.random.default_rng(d)
    for _ in range(5):
        (mu1, cov1), (mu2, cov2) = gaussian(rng, d), gaussian(rng, d)
        assert math.isclose(frechet_distance(mu1, cov1, mu2, cov2), scipy_fd(mu1, cov1, mu2, cov2), rel_tol=1e-7)


variances = st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=8)


@given(variances, st.data())
def test_diagonal_covariances_have_the_closed_form(a, data):
    b = data.draw(st.lists(st.floats(0, 100), min_size=len(a), max_size=len(a)))
    shift = data.draw(st.lists(st.floats(-10, 10), min_size=len(a), max_size=len(a)))
    a, b, shift = np.array(a), np.array(b), np.array(shift)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum(shift**2)
    got = frechet_distance(np.zeros(len(a)), np.diag(a), shift, np.diag(b))
    assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9 * (1 + a.sum() + b.sum()))


def test_singular_and_one_dimensional_covariances():
    assert math.isclose(frechet_distance(np.zeros(3), np.zeros((3, 3)), np.zeros(3), np.eye(3)), 3.0)
    assert math.isclose(frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]), 4.0 + 1.0)
    rng = np.random.default_rng(0)
    (mu1, cov1), (mu2, cov2) = gaussian(rng, 6, rank=2), gaussian(rng, 6, rank=3)
    assert math.isclose(frechet_distance(mu1, cov1, mu2, cov2), scipy_fd(mu1, cov1, mu2, cov2), rel_tol=1e-5)


@settings(max_examples=50)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1), st.booleans())
def test_is_a_non_negative_symmetric_distance_zero_on_equal_gaussians(d, seed, singular):
    rng = np.random.default_rng(seed)
    rank = max(1, d // 2) if singular else None
    (mu1, cov1), (mu2, cov2) = gaussian(rng, d, rank), gaussian(rng, d, rank)
    forward, backward = frechet_distance(mu1, cov1, mu2, cov2), frechet_distance(mu2, cov2, mu1, cov1)
    assert forward >= 0 and math.isclose(forward, backward, rel_tol=1e-6, abs_tol=1e-6)
    assert frechet_distance(mu1, cov1, mu1, cov1) <= 1e-6 * (1 + np.trace(cov1))


def test_moments_match_numpy_whatever_the_chunks():
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(300, 7)) * 0.01 + 1e4  # large mean, small spread: no cancellation allowed
    moments = Moments()
    for part in np.array_split(rows, [1, 50, 51, 200]):
        moments.add(torch.from_numpy(part))
    mean, cov = moments.stats()
    assert np.allclose(mean, rows.mean(0)) and np.allclose(cov, np.cov(rows, rowvar=False), rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError, match="two feature rows"):
        Moments().stats()


@pytest.fixture(scope="module")
def fake() -> FakeDigits:
    return FakeDigits()


def test_a_perfect_model_is_closer_than_an_untrained_one(builtin_host, fake, tmp_path):
    evaluator = FrechetDistance(FrechetParams(**SMALL), tmp_path)
    perfect = evaluator.evaluate(Run(PerfectModel(fake), fake))
    untrained = evaluator.evaluate(Run(tiny_wyner(builtin_host), fake, seed=1))
    assert set(perfect) == set(untrained) == {"fd.joint", "fd.x2y", "fd.y2x"}
    for key, value in perfect.items():
        assert 0 <= value < untrained[key] and math.isfinite(untrained[key]), (key, value, untrained[key])
    assert evaluator.evaluate(Run(PerfectModel(fake), fake)) == perfect  # seeded


def test_fd_is_a_registered_evaluator(builtin_host):
    built = check_component(builtin_host, "evaluator", "fd", {"conditions_per_class": 8, "samples_per_condition": 64})
    assert isinstance(built, Evaluator) and built.params.samples_per_condition == 64
    assert FrechetParams().conditions_per_class == 32 and FrechetParams().samples_per_condition == 2048
