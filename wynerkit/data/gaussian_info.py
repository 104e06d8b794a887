"""Closed-form information quantities of Gaussians: the ground truth estimators are tested against.

All functions take float64 numpy arrays (means ``[d]``, covariances ``[d, d]``, symmetric positive
definite) and return nats.
"""

from __future__ import annotations

import numpy as np


def _logdet(cov: np.ndarray) -> float:
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("covariance must be positive definite") from None
    return float(2.0 * np.sum(np.log(np.diag(chol))))


def gaussian_kl(mean_p: np.ndarray, cov_p: np.ndarray, mean_q: np.ndarray, cov_q: np.ndarray) -> float:
    """KL(N(mean_p, cov_p) || N(mean_q, cov_q))."""
    mean_p, mean_q = np.atleast_1d(mean_p).astype(float), np.atleast_1d(mean_q).astype(float)
    cov_p, cov_q = np.atleast_2d(cov_p).astype(float), np.atleast_2d(cov_q).astype(float)
    d = mean_p.shape[0]
    diff = mean_q - mean_p
    trace = float(np.trace(np.linalg.solve(cov_q, cov_p)))
    maha = float(diff @ np.linalg.solve(cov_q, diff))
    return 0.5 * (trace + maha - d + _logdet(cov_q) - _logdet(cov_p))


def gaussian_sym_kl(mean_p: np.ndarray, cov_p: np.ndarray, mean_q: np.ndarray, cov_q: np.ndarray) -> float:
    """KL(p||q) + KL(q||p) for two Gaussians."""
    return gaussian_kl(mean_p, cov_p, mean_q, cov_q) + gaussian_kl(mean_q, cov_q, mean_p, cov_p)


def gaussian_mutual_information(cov: np.ndarray, split: int) -> float:
    """I(A; B) for a jointly Gaussian vector (A, B) = (first ``split`` dims, the rest)."""
    cov = np.atleast_2d(cov).astype(float)
    if not 0 < split < cov.shape[0]:
        raise ValueError(f"split must leave both parts non-empty, got {split} of {cov.shape[0]}")
    return 0.5 * (_logdet(cov[:split, :split]) + _logdet(cov[split:, split:]) - _logdet(cov))


def gaussian_js(
    mean_p: np.ndarray, cov_p: np.ndarray, mean_q: np.ndarray, cov_q: np.ndarray, n: int = 200_000, seed: int = 0
) -> float:
    """Jensen-Shannon divergence between two Gaussians (Monte Carlo: it has no closed form).

    Uses ``n`` samples from each side with a fixed seed; the estimate lies in [0, log 2].
    """
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(seed)
    p = multivariate_normal(np.atleast_1d(mean_p), np.atleast_2d(cov_p))
    q = multivariate_normal(np.atleast_1d(mean_q), np.atleast_2d(cov_q))

    def half(a, b) -> float:  # E_a[log a - log m], m = (a + b) / 2
        s = np.atleast_2d(a.rvs(size=n, random_state=rng)).reshape(n, -1)
        la, lb = a.logpdf(s), b.logpdf(s)
        return float(np.mean(la - np.logaddexp(la, lb) + np.log(2.0)))

    return float(np.clip(0.5 * (half(p, q) + half(q, p)), 0.0, np.log(2.0)))
