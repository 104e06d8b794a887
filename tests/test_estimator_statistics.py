"""Every built-in estimator recovers closed-form Gaussian divergences, mutual informations and log-ratios.

The targets are moderate (sym KL 0.3 to 2 nats in d = 1..4, mutual information 0.2 to 1 nat), so
0.1 nats is a tight tolerance: measured errors are up to about 0.05, while a loss whose minimiser
is not log p/q, or a head that ignores an input, misses by far more. The pointwise checks compare
the learnt log-ratio with the closed form on held-out points, so a critic right only on average
fails too.

The critics train on fresh samples every step, as in a training run: full batches of one fixed
sample of a few thousand overfit in 3-4 dimensions (sym KL came out up to 1.3 nats high with the
NWJ loss). A cosine learning-rate decay lets them settle close to their optimum in a few hundred
steps; without it the estimates jitter with the last batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from wynerkit import BuildContext, RatioEstimator, Sample
from wynerkit.data.gaussian_info import gaussian_mutual_information, gaussian_sym_kl
from wynerkit.plugins import PluginHost
from wynerkit.training.estimates import accuracy, mutual_information, sym_kl
from wynerkit_plugins.modalities.vector import VectorModality, VectorParams

ESTIMATORS = ("adversarial-js", "nwj")
TOLERANCE = 0.1
"""Nats: the largest error allowed on a divergence or mutual information."""
STATISTICAL = settings(max_examples=3, derandomize=True, deadline=None)
"""Each example trains a critic (seconds): few examples, the same ones on every run."""
BATCH, STEPS, LR = 1024, 500, 1e-2
"""Fresh samples of p and of q per step, Adam steps, initial learning rate (decayed to 0)."""
HELD_OUT = 50_000
"""Samples per side for an estimate: its Monte Carlo error stays near 0.01 nats."""


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny networks train fastest on one thread, and do not stall when test processes share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(host: PluginHost, name: str, heads: dict, latent: dict, data_dim: int = 1, **params) -> RatioEstimator:
    """A small estimator through the registry, as a spec would build it."""
    component = host.registry.get("estimator", name)
    vectors = VectorModality(VectorParams(dim=data_dim, hidden=32, features=32))
    return component.factory(
        component.params(**{"hidden": 64, "embed": 64, **params}),
        BuildContext(registry=host.registry),
        x=vectors,
        y=vectors,
        latent=latent,
        heads=heads,
    )


def train(estimator: RatioEstimator, loss: Callable[[], Tensor]) -> None:
    optimiser = torch.optim.Adam(estimator.parameters(), lr=LR)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, STEPS)
    for _ in range(STEPS):
        optimiser.zero_grad()
        loss().backward()
        optimiser.step()
        schedule.step()
    estimator.eval()  # spectral norm stops its power iteration: the critic is fixed from here on


def gaussian(mean: np.ndarray, cov: np.ndarray) -> torch.distributions.MultivariateNormal:
    return torch.distributions.MultivariateNormal(
        torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(cov, dtype=torch.float32)
    )


def gaussians_at(target: float, d: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Means and covariances of p and q whose smoothed versions (cov + noise^2 I) have sym KL ``target``.

    q has a rotated covariance with eigenvalues in [0.7, 1.5] (at most 0.33 nats of the target in
    d = 4) and a mean shift in a random direction scaled so that the total is exactly ``target``.
    """
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    cov_p, cov_q = np.eye(d), rotation @ np.diag(rng.uniform(0.7, 1.5, size=d)) @ rotation.T
    smooth_p, smooth_q = cov_p + noise**2 * np.eye(d), cov_q + noise**2 * np.eye(d)
    from_cov = gaussian_sym_kl(np.zeros(d), smooth_p, np.zeros(d), smooth_q)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    per_unit = 0.5 * direction @ (np.linalg.inv(smooth_p) + np.linalg.inv(smooth_q)) @ direction
    return np.zeros(d), cov_p, math.sqrt((target - from_cov) / per_unit) * direction, cov_q


@pytest.mark.parametrize("name", ESTIMATORS)
@STATISTICAL
@given(
    d=st.integers(1, 4),
    target=st.floats(0.3, 2.0),
    noise=st.sampled_from([0.0, 0.5]),
    seed=st.integers(0, 2**16),
)
def test_recovers_the_symmetric_kl_and_the_pointwise_log_ratio_of_gaussians(builtin_host, name, d, target, noise, seed):
    torch.manual_seed(seed)
    mean_p, cov_p, mean_q, cov_q = gaussians_at(target, d, noise, np.random.default_rng(seed))
    p, q = gaussian(mean_p, cov_p), gaussian(mean_q, cov_q)
    estimator = build(builtin_host, name, {"z": ("z",)}, {"z": d}, instance_noise=noise)
    train(
        estimator,
        lambda: estimator.critic_loss(
            estimator.log_ratio("z", Sample(z=p.sample((BATCH,)))),
            estimator.log_ratio("z", Sample(z=q.sample((BATCH,)))),
        ),
    )

    # The critic reads z + noise: it compares p and q each convolved with N(0, noise^2 I).
    smoothing = noise**2 * np.eye(d)
    exact = gaussian_sym_kl(mean_p, cov_p + smoothing, mean_q, cov_q + smoothing)
    assert exact == pytest.approx(target)
    smooth_p, smooth_q = gaussian(mean_p, cov_p + smoothing), gaussian(mean_q, cov_q + smoothing)
    with torch.no_grad():
        estimate = sym_kl(
            estimator.log_ratio("z", Sample(z=p.sample((HELD_OUT,)))),
            estimator.log_ratio("z", Sample(z=q.sample((HELD_OUT,)))),
        ).item()
        # The learnt function of its (noisy) input is the log-ratio of the smoothed densities; read it
        # at points of those, without adding noise on top.
        estimator.instance_noise = 0.0
        points = torch.cat([smooth_p.sample((1000,)), smooth_q.sample((1000,))])
        learnt = estimator.log_ratio("z", Sample(z=points))
    truth = smooth_p.log_prob(points) - smooth_q.log_prob(points)
    error = (learnt - truth).abs().mean().item()
    correlation = np.corrcoef(learnt.numpy(), truth.numpy())[0, 1]
    assert estimate == pytest.approx(exact, abs=TOLERANCE)
    assert error < 0.15
    assert correlation > 0.98


@pytest.mark.parametrize("name", ESTIMATORS)
@STATISTICAL
@given(
    k=st.integers(1, 3),
    target=st.floats(0.2, 1.0),
    noise=st.sampled_from([0.0, 0.25]),
    seed=st.integers(0, 2**16),
)
def test_recovers_the_mutual_information_of_correlated_gaussians(builtin_host, name, k, target, noise, seed):
    """x = z + sigma e1, y = z + sigma e2 in R^k; the head reads (x, y, z) as the model's I heads do.

    I((X, Y); Z) = k/2 log(1 + 2 / sigma^2); ``sigma`` is chosen to give ``target`` without noise.
    """
    torch.manual_seed(seed)
    sigma = math.sqrt(2 / math.expm1(2 * target / k))

    def draw(n: int) -> Sample:
        z = torch.randn(n, k)
        return Sample(x=z + sigma * torch.randn(n, k), y=z + sigma * torch.randn(n, k), z=z)

    cov = np.kron([[1.0, 1.0, 1.0], [1.0, 1 + sigma**2, 1.0], [1.0, 1.0, 1 + sigma**2]], np.eye(k))  # (z, x, y)
    assert gaussian_mutual_information(cov, k) == pytest.approx(target)
    smoothed = cov + noise**2 * np.eye(3 * k)  # the critic reads noisy inputs
    exact = gaussian_mutual_information(smoothed, k)
    estimator = build(builtin_host, name, {"mi": ("x", "y", "z")}, {"z": k}, data_dim=k, instance_noise=noise)

    def loss() -> Tensor:
        joint = draw(BATCH)
        features = estimator.features(joint)  # shared by both sides: shuffling z leaves (x, y) as they are
        return estimator.critic_loss(
            estimator.log_ratio("mi", joint, features), estimator.log_ratio("mi", joint.shuffled("z"), features)
        )

    train(estimator, loss)
    with torch.no_grad():
        estimate = mutual_information(estimator.log_ratio("mi", draw(HELD_OUT))).item()
        # Pointwise: the log-ratio is the pointwise mutual information of the smoothed Gaussians.
        estimator.instance_noise = 0.0
        zxy = gaussian(np.zeros(3 * k), smoothed).sample((2000,))
        z, x, y = zxy.split(k, dim=1)
        learnt = estimator.log_ratio("mi", Sample(x=x, y=y, z=z))
    truth = (
        gaussian(np.zeros(3 * k), smoothed).log_prob(zxy)
        - gaussian(np.zeros(k), smoothed[:k, :k]).log_prob(z)
        - gaussian(np.zeros(2 * k), smoothed[k:, k:]).log_prob(zxy[:, k:])
    )
    error = (learnt - truth).abs().mean().item()
    correlation = np.corrcoef(learnt.numpy(), truth.numpy())[0, 1]
    assert estimate == pytest.approx(exact, abs=TOLERANCE)
    # Looser than for the sym KL: the pointwise MI couples z with x + y (a product of inputs), which
    # the small critic fits less closely; the mean is still within TOLERANCE.
    assert error < 0.2
    assert correlation > 0.97


def test_estimates_are_the_textbook_formulas():
    log_ratio_p, log_ratio_q = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 1.0])
    assert sym_kl(log_ratio_p, log_ratio_q).item() == pytest.approx(0.5 - (-1.0))
    assert mutual_information(log_ratio_p).item() == pytest.approx(0.5)
    assert accuracy(log_ratio_p, log_ratio_q).item() == pytest.approx(3 / 5)  # 2, 0.5 on p; -3 on q
    assert accuracy(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(0.5)  # 0 counts as q


@pytest.mark.parametrize("name", ESTIMATORS)
def test_the_critic_loss_is_least_at_the_log_ratio(builtin_host, name):
    """On three atoms with frequencies p = (7, 2, 1)/10 and q = (1, 3, 6)/10, the best table T is log p/q."""
    atoms_p, atoms_q = torch.tensor([0] * 7 + [1] * 2 + [2]), torch.tensor([0] + [1] * 3 + [2] * 6)
    critic_loss = build(builtin_host, name, {"z": ("z",)}, {"z": 1}).critic_loss
    table = torch.zeros(3, requires_grad=True)
    optimiser = torch.optim.LBFGS([table], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure() -> Tensor:
        optimiser.zero_grad()
        loss = critic_loss(table[atoms_p], table[atoms_q])
        loss.backward()
        return loss

    optimiser.step(closure)
    assert torch.allclose(table.detach(), torch.tensor([7 / 1, 2 / 3, 1 / 6]).log(), atol=1e-4)
