"""The adversarial-js estimator: head layout, losses, and recovery of closed-form divergences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import wynerkit_plugins.estimators.adversarial_js as ajs
import wynerkit_plugins.modalities.vector as vector
from wynerkit import BuildContext, Sample
from wynerkit.components import Registry
from wynerkit.gaussian_info import gaussian_mutual_information, gaussian_sym_kl
from wynerkit.testing import check_component, load_plugin

LATENT = {"z": 3, "u": 2, "v": 2}
HEADS = {"joint": ("x", "y", "z", "u", "v"), "ci": ("z", "x", "y"), "m": ("z",)}


def modality(dim: int) -> vector.VectorModality:
    return vector.VectorModality(vector.VectorParams(dim=dim, hidden=16, features=16))


def estimator(heads=HEADS, latent=LATENT, **params) -> ajs.AdversarialJS:
    return ajs.make_adversarial_js(
        ajs.AdversarialJSParams(**{"hidden": 32, "embed": 16, **params}),
        BuildContext(registry=Registry()),
        x=modality(4),
        y=modality(5),
        latent=latent,
        heads=heads,
    )


def sample(n: int, shift: float = 0.0) -> Sample:
    return Sample(
        x=torch.randn(n, 4) + shift, y=torch.randn(n, 5), **{k: torch.randn(n, d) + shift for k, d in LATENT.items()}
    )


def test_honours_the_estimator_contract():
    host = load_plugin(ajs, with_builtins=False)
    built = check_component(
        host, "estimator", "adversarial-js", {"hidden": 8}, x=modality(4), y=modality(5), latent=LATENT, heads=HEADS
    )
    assert built.heads["ci"] == ("x", "y", "z")  # canonical order whatever order the caller gave


@pytest.mark.parametrize(
    ("heads", "latent", "message"),
    [
        ({"h": ("x", "z")}, LATENT, "head 'h' reads \\['x', 'z'\\]: a head reads both x and y, or neither"),
        ({"h": ("x", "y", "w")}, LATENT, "head 'h': unknown variable\\(s\\) \\['w'\\]"),
        ({"h": ("z", "u")}, {"z": 2}, "head 'h': no size for latent\\(s\\) \\['u'\\]"),
        ({"h": ()}, LATENT, "head 'h' reads no variable"),
        ({}, LATENT, "needs at least one head"),
    ],
)
def test_bad_heads_are_refused_with_a_reason(heads, latent, message):
    with pytest.raises(ValueError, match=message):
        estimator(heads=heads, latent=latent)


def test_unknown_head_and_missing_variables():
    est = estimator()
    with pytest.raises(ValueError, match="unknown critic head 'nope'; this estimator has: joint, ci, m"):
        est.log_ratio("nope", sample(3))
    with pytest.raises(ValueError, match="lacks variable"):
        est.log_ratio("joint", sample(3).with_(u=None))


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 17), head=st.sampled_from(sorted(HEADS)))
def test_one_logit_per_item(batch, head):
    est = estimator().eval()
    assert est.log_ratio(head, sample(batch)).shape == (batch,)


def test_instance_noise_makes_the_critic_random_and_zero_noise_deterministic():
    s = sample(8)
    quiet, noisy = estimator(instance_noise=0.0).eval(), estimator(instance_noise=0.25).eval()
    assert torch.equal(quiet.log_ratio("joint", s), quiet.log_ratio("joint", s))
    assert not torch.equal(noisy.log_ratio("joint", s), noisy.log_ratio("joint", s))


def test_losses_have_their_textbook_values():
    est = estimator(instance_noise=0.0).eval()  # eval: spectral norm stops its power iteration
    p, q = sample(64), sample(64, shift=1.0)
    t_p, t_q = est.log_ratio("joint", p), est.log_ratio("joint", q)
    assert est.sym_kl("joint", p, q).item() == pytest.approx((t_p.mean() - t_q.mean()).item(), abs=1e-6)
    expected = torch.nn.functional.softplus(-t_p).mean() + torch.nn.functional.softplus(t_q).mean()
    assert est.critic_loss("joint", p, q).item() == pytest.approx(expected.item(), abs=1e-6)
    last = est.head_nets["joint"].body[-1]
    torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
    assert est.critic_loss("joint", p, q).item() == pytest.approx(2 * math.log(2), abs=1e-6)
    assert est.accuracy("joint", p, q).item() == pytest.approx(0.5)  # T = 0: all of q right, none of p


def test_shared_pair_features_give_the_same_logits():
    est = estimator(instance_noise=0.0).eval()
    s = sample(6)
    features = est.pair_features(s)
    assert torch.allclose(est.log_ratio("ci", s, features), est.log_ratio("ci", s))
    with pytest.raises(ValueError, match="no head of this estimator reads"):
        estimator(heads={"m": ("z",)}).pair_features(s)


def train(est: ajs.AdversarialJS, loss, steps: int, lr: float = 3e-3) -> None:
    optimiser = torch.optim.Adam(est.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        loss().backward()
        optimiser.step()


def gaussian_sampler(mean: np.ndarray, cov: np.ndarray):
    chol = torch.linalg.cholesky(torch.as_tensor(cov, dtype=torch.float32))
    mu = torch.as_tensor(mean, dtype=torch.float32)
    return lambda n: mu + torch.randn(n, len(mean)) @ chol.T


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_recovers_the_symmetric_kl_between_gaussians_and_the_pointwise_log_ratio(d):
    torch.manual_seed(d)
    rng = np.random.default_rng(d)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    mean_p, mean_q = np.zeros(d), rotation @ np.full(d, 0.7 / math.sqrt(d))
    cov_p, cov_q = np.eye(d), rotation @ np.diag(rng.uniform(1.3, 1.7, size=d)) @ rotation.T
    draw_p, draw_q = gaussian_sampler(mean_p, cov_p), gaussian_sampler(mean_q, cov_q)
    est = estimator(heads={"z": ("z",)}, latent={"z": d}, instance_noise=0.0, hidden=64, embed=64)
    train(est, lambda: est.critic_loss("z", Sample(z=draw_p(512)), Sample(z=draw_q(512))), steps=1500)
    with torch.no_grad():
        p, q = Sample(z=draw_p(50_000)), Sample(z=draw_q(50_000))
        estimate = est.sym_kl("z", p, q).item()
        points = draw_p(2000)
        true_log_ratio = torch.distributions.MultivariateNormal(torch.zeros(d), torch.eye(d)).log_prob(
            points
        ) - torch.distributions.MultivariateNormal(
            torch.as_tensor(mean_q).float(), torch.as_tensor(cov_q).float()
        ).log_prob(points)
        logit = est.log_ratio("z", Sample(z=points))
    exact = gaussian_sym_kl(mean_p, cov_p, mean_q, cov_q)
    assert 0.2 < exact < 1.5  # a moderate target, neither trivial nor saturated
    assert estimate == pytest.approx(exact, abs=0.1)
    assert torch.mean(torch.abs(logit - true_log_ratio)).item() < 0.15


def test_recovers_the_mutual_information_of_correlated_gaussians():
    torch.manual_seed(0)
    sigma = 0.8  # x = z + sigma e1, y = z + sigma e2 (1-d each): I((X,Y); Z) = 0.5 log(1 + 2 / sigma^2)
    cov = np.array([[1.0, 1.0, 1.0], [1.0, 1 + sigma**2, 1.0], [1.0, 1.0, 1 + sigma**2]])  # (z, x, y)
    exact = gaussian_mutual_information(cov, 1)
    assert exact == pytest.approx(0.5 * math.log(1 + 2 / sigma**2))

    def draw(n: int) -> Sample:
        z = torch.randn(n, 1)
        return Sample(x=z + sigma * torch.randn(n, 1), y=z + sigma * torch.randn(n, 1), z=z)

    est = ajs.AdversarialJS(
        vector.VectorModality(vector.VectorParams(dim=1, hidden=32, features=32)),
        vector.VectorModality(vector.VectorParams(dim=1, hidden=32, features=32)),
        {"z": 1},
        {"mi": ("x", "y", "z")},
        ajs.AdversarialJSParams(hidden=64, embed=32, instance_noise=0.0),
    )
    train(est, lambda: est.mi_critic_loss("mi", draw(512)), steps=1500)
    with torch.no_grad():
        estimate = est.mutual_information("mi", draw(50_000)).item()
    assert estimate == pytest.approx(exact, abs=0.1)
