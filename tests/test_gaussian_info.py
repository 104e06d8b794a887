"""Closed-form Gaussian information quantities: invariants and independent checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.stats import multivariate_normal, norm

from wynerkit.data.gaussian_info import gaussian_js, gaussian_kl, gaussian_mutual_information, gaussian_sym_kl

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


@given(d=dims, seed=seeds)
def test_kl_is_invariant_to_a_shared_affine_map(d, seed):
    rng = np.random.default_rng(seed)
    (m, s), (m2, s2) = random_gaussian(rng, d), random_gaussian(rng, d)
    a, b = rng.normal(size=(d, d)) + 3 * np.eye(d), rng.normal(size=d)
    moved = gaussian_kl(a @ m + b, a @ s @ a.T, a @ m2 + b, a @ s2 @ a.T)
    assert moved == pytest.approx(gaussian_kl(m, s, m2, s2), rel=1e-6, abs=1e-9)


def block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The block-diagonal matrix diag(a, b): the covariance of independent blocks."""
    out = np.zeros((a.shape[0] + b.shape[0],) * 2)
    out[: a.shape[0], : a.shape[0]], out[a.shape[0] :, a.shape[0] :] = a, b
    return out


@given(d1=dims, d2=dims, seed=seeds)
def test_kl_and_symmetric_kl_add_over_independent_blocks(d1, d2, seed):
    rng = np.random.default_rng(seed)
    (m1, s1), (n1, t1) = random_gaussian(rng, d1), random_gaussian(rng, d1)
    (m2, s2), (n2, t2) = random_gaussian(rng, d2), random_gaussian(rng, d2)
    for divergence in (gaussian_kl, gaussian_sym_kl):
        joint = divergence(np.r_[m1, m2], block(s1, s2), np.r_[n1, n2], block(t1, t2))
        assert joint == pytest.approx(divergence(m1, s1, n1, t1) + divergence(m2, s2, n2, t2), rel=1e-7)


@given(a=st.integers(1, 3), b=st.integers(1, 3), seed=seeds)
def test_mutual_information_adds_over_independent_pairs_and_ignores_maps_of_each_side(a, b, seed):
    rng = np.random.default_rng(seed)
    (_, first), (_, second) = random_gaussian(rng, 2 * a), random_gaussian(rng, 2 * b)  # (A1, B1), (A2, B2)
    # Reorder diag(first, second) as ((A1, A2), (B1, B2)).
    order = [*range(a), *range(2 * a, 2 * a + b), *range(a, 2 * a), *range(2 * a + b, 2 * a + 2 * b)]
    both = block(first, second)[np.ix_(order, order)]
    total = gaussian_mutual_information(both, a + b)
    assert total == pytest.approx(gaussian_mutual_information(first, a) + gaussian_mutual_information(second, b))
    # An invertible affine map of each side, (A, B) -> (M A, N B), keeps I(A; B).
    maps = block(
        rng.normal(size=(a + b, a + b)) + 3 * np.eye(a + b), rng.normal(size=(a + b, a + b)) + 3 * np.eye(a + b)
    )
    assert gaussian_mutual_information(maps @ both @ maps.T, a + b) == pytest.approx(total, rel=1e-6, abs=1e-9)


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


@settings(max_examples=10, deadline=None)
@given(mean=st.floats(-4.0, 4.0), std=st.floats(0.3, 3.0))
def test_js_agrees_with_quadrature_and_lies_between_zero_the_sym_kl_bound_and_log_2(mean, std):
    """An independent check in one dimension, and the bounds 0 <= JS <= min(log 2, sym KL / 4).

    The sym KL / 4 bound follows from the convexity of KL: KL(p || (p + q)/2) <= KL(p || q) / 2.
    ``gaussian_js`` clips to [0, log 2], so only the quadrature and the sym KL bound can catch an error.
    """
    p, q = norm(0.0, 1.0), norm(mean, std)

    def integrand(t: float) -> float:
        lp, lq = p.logpdf(t), q.logpdf(t)
        m = np.logaddexp(lp, lq) - np.log(2.0)
        return 0.5 * (np.exp(lp) * (lp - m) + np.exp(lq) * (lq - m))

    low, high = min(-10.0, mean - 10 * std), max(10.0, mean + 10 * std)
    exact, _ = quad(integrand, low, high, points=[0.0, mean], limit=200)
    js = gaussian_js(np.zeros(1), np.eye(1), np.array([mean]), np.array([[std**2]]), n=50_000)
    assert js == pytest.approx(exact, abs=0.01)
    assert (
        0.0
        <= js
        <= min(np.log(2.0), gaussian_sym_kl(np.zeros(1), np.eye(1), np.array([mean]), np.array([[std**2]])) / 4 + 0.01)
    )


def test_js_is_zero_between_equal_gaussians_and_tends_to_log_2_as_they_separate():
    m, s = np.zeros(2), np.array([[1.0, 0.3], [0.3, 2.0]])
    assert gaussian_js(m, s, m, s, n=10_000) == pytest.approx(0.0, abs=1e-9)
    assert gaussian_js(m, s, m + 40.0, s, n=10_000) == pytest.approx(np.log(2.0), abs=1e-6)
