"""Closed-form Gaussian information quantities: invariants and independent checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from wynerkit.gaussian_info import gaussian_js, gaussian_kl, gaussian_mutual_information, gaussian_sym_kl

dims = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)


def random_gaussian(rng: np.random.Generator, d: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.normal(size=(d, d))
    return rng.normal(size=d), a @ a.T + 0.5 * np.eye(d)


@given(d=dims, seed=seeds)
def test_kl_of_a_gaussian_with_itself_is_zero_and_otherwise_positive(d, seed):
    rng = np.random.default_rng(seed)
    (m, s), (m2, s2) = random_gaussian(rng, d), random_gaussian(rng, d)
    assert gaussian_kl(m, s, m, s) == pytest.approx(0.0, abs=1e-9)
    assert gaussian_kl(m, s, m2, s2) > 0


@given(d=dims, seed=seeds)
def test_symmetric_kl_is_symmetric_and_invariant_to_a_shared_affine_map(d, seed):
    rng = np.random.default_rng(seed)
    (m, s), (m2, s2) = random_gaussian(rng, d), random_gaussian(rng, d)
    a = rng.normal(size=(d, d)) + 3 * np.eye(d)  # invertible with overwhelming probability
    b = rng.normal(size=d)
    value = gaussian_sym_kl(m, s, m2, s2)
    assert value == pytest.approx(gaussian_sym_kl(m2, s2, m, s), rel=1e-9)
    assert value == pytest.approx(gaussian_sym_kl(a @ m + b, a @ s @ a.T, a @ m2 + b, a @ s2 @ a.T), rel=1e-6)


@given(d1=dims, d2=dims, seed=seeds)
def test_kl_adds_over_independent_blocks(d1, d2, seed):
    rng = np.random.default_rng(seed)
    (m1, s1), (n1, t1) = random_gaussian(rng, d1), random_gaussian(rng, d1)
    (m2, s2), (n2, t2) = random_gaussian(rng, d2), random_gaussian(rng, d2)

    def block(a, b):
        out = np.zeros((a.shape[0] + b.shape[0],) * 2)
        out[: a.shape[0], : a.shape[0]], out[a.shape[0] :, a.shape[0] :] = a, b
        return out

    joint = gaussian_kl(np.r_[m1, m2], block(s1, s2), np.r_[n1, n2], block(t1, t2))
    assert joint == pytest.approx(gaussian_kl(m1, s1, n1, t1) + gaussian_kl(m2, s2, n2, t2), rel=1e-7)


@given(rho=st.floats(-0.99, 0.99))
def test_mutual_information_of_a_correlated_pair_matches_the_textbook_formula(rho):
    cov = np.array([[1.0, rho], [rho, 1.0]])
    assert gaussian_mutual_information(cov, 1) == pytest.approx(-0.5 * np.log(1 - rho**2), abs=1e-9)


@given(d=st.integers(2, 5), seed=seeds)
def test_mutual_information_is_symmetric_and_non_negative(d, seed):
    _, cov = random_gaussian(np.random.default_rng(seed), d)
    split = d // 2
    flipped = np.roll(np.roll(cov, -split, axis=0), -split, axis=1)
    assert gaussian_mutual_information(cov, split) >= -1e-12
    assert gaussian_mutual_information(cov, split) == pytest.approx(gaussian_mutual_information(flipped, d - split))


@settings(max_examples=10, deadline=None)
@given(d=st.integers(1, 3), seed=st.integers(0, 1000))
def test_kl_agrees_with_monte_carlo_and_js_stays_in_range(d, seed):
    rng = np.random.default_rng(seed)
    (m, s), (m2, s2) = random_gaussian(rng, d), random_gaussian(rng, d)
    x = multivariate_normal(m, s).rvs(size=200_000, random_state=rng).reshape(-1, d)
    mc = np.mean(multivariate_normal(m, s).logpdf(x) - multivariate_normal(m2, s2).logpdf(x))
    exact = gaussian_kl(m, s, m2, s2)
    assert mc == pytest.approx(exact, abs=0.05 + 0.02 * exact)
    assert 0.0 <= gaussian_js(m, s, m2, s2, n=20_000) <= np.log(2)


def test_errors_are_explicit():
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_kl(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="split must leave both parts non-empty"):
        gaussian_mutual_information(np.eye(3), 3)
