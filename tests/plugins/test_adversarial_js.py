"""The adversarial-js estimator: head layout, losses, and recovery of closed-form divergences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import wynerkit_plugins.estimators.adversarial_js as ajs
from wynerkit import BuildContext, Modality, Sample
from wynerkit.components import Registry
from wynerkit.gaussian_info import gaussian_mutual_information, gaussian_sym_kl
from wynerkit.testing import check_component, load_plugin

LATENT = {"z": 3, "u": 2, "v": 2}
HEADS = {"joint": ("x", "y", "z", "u", "v"), "ci": ("z", "x", "y"), "m": ("z",)}


class Trunk(nn.Sequential):
    """Linear + LeakyReLU with the ``out_features`` a FeatureNet declares."""

    def __init__(self, dim: int, features: int) -> None:
        super().__init__(nn.Linear(dim, features), nn.LeakyReLU(0.2))
        self.out_features = features


class Vectors:
    """A test-local Modality of flat vectors, so these tests depend on no other plugin."""

    value_range = (-math.inf, math.inf)

    def __init__(self, dim: int, features: int = 16) -> None:
        self.shape = (dim,)
        self.features = features

    def encoder_trunk(self) -> Trunk:
        return Trunk(self.shape[0], self.features)

    def critic_trunk(self) -> Trunk:
        return Trunk(self.shape[0], self.features)

    def decoder(self, in_features: int) -> nn.Module:
        return nn.Linear(in_features, self.shape[0])

    def reconstruction_loss(self, output: Tensor, target: Tensor) -> Tensor:
        return (output - target).pow(2).mean(1)

    def to_grid(self, batch: Tensor, nrow: int) -> np.ndarray:
        return np.zeros((1, 1, 3), dtype=np.uint8)


def estimator(heads=HEADS, latent=LATENT, dims=(4, 5), features=16, **params) -> ajs.AdversarialJS:
    return ajs.make_adversarial_js(
        ajs.AdversarialJSParams(**{"hidden": 32, "embed": 16, **params}),
        BuildContext(registry=Registry()),
        x=Vectors(dims[0], features),
        y=Vectors(dims[1], features),
        latent=latent,
        heads=heads,
    )


def sample(n: int, shift: float = 0.0) -> Sample:
    return Sample(
        x=torch.randn(n, 4) + shift, y=torch.randn(n, 5), **{k: torch.randn(n, d) + shift for k, d in LATENT.items()}
    )


def test_the_test_modality_is_a_modality():
    assert isinstance(Vectors(3), Modality)


def test_registered_among_the_builtins(builtin_host):
    component = builtin_host.registry.get("estimator", "adversarial-js")
    assert component.params is ajs.AdversarialJSParams
    assert component.summary == "Adversarial density-ratio critics with the logistic (Jensen-Shannon) loss."


def test_honours_the_estimator_contract():
    host = load_plugin(ajs, with_builtins=False)
    built = check_component(
        host, "estimator", "adversarial-js", {"hidden": 8}, x=Vectors(4), y=Vectors(5), latent=LATENT, heads=HEADS
    )
    assert built.heads["ci"] == ("x", "y", "z")  # canonical order whatever order the caller gave


@pytest.mark.parametrize(
    ("heads", "latent", "message"),
    [
        ({"h": ("x", "z")}, LATENT, "head 'h' reads \\['x', 'z'\\]: a head reads both x and y, or neither"),
        ({"h": ("y",)}, LATENT, "head 'h' reads \\['y'\\]: a head reads both x and y, or neither"),
        ({"h": ("x", "y", "w")}, LATENT, "head 'h': unknown variable\\(s\\) \\['w'\\]"),
        ({"h": ("z", "u")}, {"z": 2}, "head 'h': no size for latent\\(s\\) \\['u'\\]"),
        ({"h": ("z",)}, {"z": 0}, "head 'h': no size for latent\\(s\\) \\['z'\\]"),
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
    with pytest.raises(ValueError, match="lacks variable"):
        est.log_ratio("ci", sample(3).with_(y=None))


layouts = st.tuples(st.booleans(), st.sets(st.sampled_from(("z", "u", "v")))).filter(lambda h: h[0] or h[1])


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 17), layout=layouts, order=st.randoms(use_true_random=False))
def test_one_logit_per_item_for_any_head_layout(batch, layout, order):
    reads_data, latents = layout
    variables = [*(("x", "y") if reads_data else ()), *latents]
    order.shuffle(variables)
    est = estimator(heads={"h": tuple(variables), "m": ("z",)}, instance_noise=0.0).eval()
    assert est.heads["h"] == tuple(v for v in ("x", "y", "z", "u", "v") if v in variables)
    s = sample(batch)
    t = est.log_ratio("h", s)
    assert t.shape == (batch,)
    assert torch.isfinite(t).all()
    if reads_data:  # precomputed pair features give the same logits
        assert torch.allclose(est.log_ratio("h", s, est.pair_features(s)), t)


def test_instance_noise_makes_the_critic_random_and_zero_noise_deterministic():
    s = sample(8)
    quiet, noisy = estimator(instance_noise=0.0).eval(), estimator(instance_noise=0.25).eval()
    for head in HEADS:
        assert torch.equal(quiet.log_ratio(head, s), quiet.log_ratio(head, s))
        assert not torch.equal(noisy.log_ratio(head, s), noisy.log_ratio(head, s))


def test_instance_noise_has_the_requested_std():
    torch.manual_seed(0)
    noise = estimator(instance_noise=0.4).noisy(torch.full((200_000,), 3.0))
    assert noise.mean().item() == pytest.approx(3.0, abs=0.01)
    assert noise.std().item() == pytest.approx(0.4, abs=0.01)


def test_losses_have_their_textbook_values():
    torch.manual_seed(0)
    est = estimator(instance_noise=0.0).eval()  # eval: spectral norm stops its power iteration
    p, q = sample(64), sample(64, shift=1.0)
    t_p, t_q = est.log_ratio("joint", p), est.log_ratio("joint", q)
    assert est.sym_kl("joint", p, q).item() == pytest.approx((t_p.mean() - t_q.mean()).item(), abs=1e-6)
    expected = torch.nn.functional.softplus(-t_p).mean() + torch.nn.functional.softplus(t_q).mean()
    assert est.critic_loss("joint", p, q).item() == pytest.approx(expected.item(), abs=1e-6)
    expected_accuracy = (torch.sum(t_p > 0) + torch.sum(t_q <= 0)).item() / 128
    assert est.accuracy("joint", p, q).item() == pytest.approx(expected_accuracy)
    assert est.mutual_information("ci", p).item() == pytest.approx(est.log_ratio("ci", p).mean().item(), abs=1e-6)
    shuffled = p.shuffled("z", torch.Generator().manual_seed(5))
    by_hand = est.critic_loss("ci", p, shuffled).item()
    assert est.mi_critic_loss("ci", p, torch.Generator().manual_seed(5)).item() == pytest.approx(by_hand, abs=1e-6)

    last = est.head_nets["joint"].body[-1]
    torch.nn.init.zeros_(last.weight), torch.nn.init.zeros_(last.bias)
    assert est.critic_loss("joint", p, q).item() == pytest.approx(2 * math.log(2), abs=1e-6)
    assert est.sym_kl("joint", p, q).item() == 0.0
    assert est.accuracy("joint", p, q).item() == pytest.approx(0.5)  # T = 0: all of q right, none of p


def test_pair_features_are_shared_and_can_be_detached():
    est = estimator()
    s = sample(6)
    est.mi_critic_loss("ci", s, features=est.pair_features(s).detach()).backward()
    assert est.x_trunk[0].weight.grad is None  # a detached CI head does not train the shared map
    assert est.head_nets["ci"].body[0].weight.grad is not None
    est.critic_loss("joint", s, sample(6, shift=1.0)).backward()
    assert est.x_trunk[0].weight.grad is not None
    with pytest.raises(ValueError, match="no head of this estimator reads"):
        estimator(heads={"m": ("z",)}).pair_features(s)


# Statistical checks against closed forms. A cosine learning-rate decay lets the critic settle
# close to its optimum T = log p/q in a few hundred full-size steps; without it the estimates
# jitter with the last minibatches.


@pytest.fixture
def one_thread():
    """Tiny networks train fastest on one thread, and do not stall when test processes share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train(est: ajs.AdversarialJS, loss, steps: int = 600, lr: float = 6e-3) -> None:
    optimiser = torch.optim.Adam(est.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    for _ in range(steps):
        optimiser.zero_grad()
        loss().backward()
        optimiser.step()
        schedule.step()
    est.eval()


def gaussian(mean: np.ndarray, cov: np.ndarray) -> torch.distributions.MultivariateNormal:
    return torch.distributions.MultivariateNormal(
        torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(cov, dtype=torch.float32)
    )


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(("d", "noise"), [(1, 0.0), (2, 0.0), (3, 0.0), (4, 0.0), (1, 0.75), (3, 0.75)])
def test_recovers_the_symmetric_kl_between_gaussians_and_the_pointwise_log_ratio(d, noise):
    torch.manual_seed(d)
    rng = np.random.default_rng(d)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    mean_p, mean_q = np.zeros(d), rotation @ np.full(d, 0.7 / math.sqrt(d))
    cov_p, cov_q = np.eye(d), rotation @ np.diag(rng.uniform(1.3, 1.7, size=d)) @ rotation.T
    p, q = gaussian(mean_p, cov_p), gaussian(mean_q, cov_q)
    est = estimator(heads={"z": ("z",)}, latent={"z": d}, instance_noise=noise, hidden=64, embed=64)
    train(est, lambda: est.critic_loss("z", Sample(z=p.sample((512,))), Sample(z=q.sample((512,)))))

    # The critic sees z + noise: it compares p and q each convolved with N(0, noise^2 I).
    smoothing = noise**2 * np.eye(d)
    exact = gaussian_sym_kl(mean_p, cov_p + smoothing, mean_q, cov_q + smoothing)
    assert 0.3 < exact < 1.5  # a moderate target, neither trivial nor saturated
    if noise:  # the smoothing matters: ignoring it would miss by more than the tolerance
        assert gaussian_sym_kl(mean_p, cov_p, mean_q, cov_q) - exact > 0.15
    with torch.no_grad():
        estimate = est.sym_kl("z", Sample(z=p.sample((50_000,))), Sample(z=q.sample((50_000,)))).item()
        # Pointwise, the learnt function of the (noisy) input is the log-ratio of the smoothed densities;
        # read it without adding noise on top.
        est.instance_noise = 0.0
        points = torch.cat([p.sample((1000,)), q.sample((1000,))])
        smooth_p, smooth_q = gaussian(mean_p, cov_p + smoothing), gaussian(mean_q, cov_q + smoothing)
        error = est.log_ratio("z", Sample(z=points)) - (smooth_p.log_prob(points) - smooth_q.log_prob(points))
    assert estimate == pytest.approx(exact, abs=0.1)
    assert error.abs().mean().item() < 0.1


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize(("k", "sigma", "noise"), [(1, 0.8, 0.0), (2, 1.2, 0.25)])
def test_recovers_the_mutual_information_of_correlated_gaussians(k, sigma, noise):
    """x = z + sigma e1, y = z + sigma e2 with z, x, y in R^k: I((X, Y); Z) = k/2 log(1 + 2 / sigma^2)."""
    torch.manual_seed(k)

    def draw(n: int) -> Sample:
        z = torch.randn(n, k)
        return Sample(x=z + sigma * torch.randn(n, k), y=z + sigma * torch.randn(n, k), z=z)

    cov = np.kron([[1.0, 1.0, 1.0], [1.0, 1 + sigma**2, 1.0], [1.0, 1.0, 1 + sigma**2]], np.eye(k))  # (z, x, y)
    assert gaussian_mutual_information(cov, k) == pytest.approx(k / 2 * math.log(1 + 2 / sigma**2))
    exact = gaussian_mutual_information(cov + noise**2 * np.eye(3 * k), k)  # the critic reads noisy inputs
    assert 0.3 < exact < 1.5
    est = estimator(heads={"mi": ("x", "y", "z")}, latent={"z": k}, dims=(k, k), instance_noise=noise, hidden=64)
    train(est, lambda: est.mi_critic_loss("mi", draw(512)))
    with torch.no_grad():
        estimate = est.mutual_information("mi", draw(50_000)).item()
    assert estimate == pytest.approx(exact, abs=0.1)
