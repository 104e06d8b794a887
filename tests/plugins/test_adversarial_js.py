"""The adversarial-js estimator: head layout, shared features, instance noise, spectral norm, loss.

The shared critic network is tested here, through adversarial-js; ``test_nwj.py`` checks that nwj
is the same network with another loss. Recovery of closed-form divergences is in
``tests/test_estimator_statistics.py``.
"""

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


def estimator(heads=HEADS, latent=LATENT, **params) -> ajs.AdversarialJS:
    return ajs.make_adversarial_js(
        ajs.AdversarialJSParams(**{"hidden": 32, "embed": 16, **params}),
        BuildContext(registry=Registry()),
        x=Vectors(4),
        y=Vectors(5),
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
        ({}, LATENT, "adversarial-js needs at least one head"),
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
    with pytest.raises(ValueError, match="lacks variable"):
        est.features(sample(3).with_(x=None))
    assert est.features(sample(3).with_(x=None, y=None)) is None  # a latent-only head's sample


layouts = st.tuples(st.booleans(), st.sets(st.sampled_from(("z", "u", "v")))).filter(lambda h: h[0] or h[1])


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 17), layout=layouts, order=st.randoms(use_true_random=False))
def test_one_log_ratio_per_item_for_any_head_layout(batch, layout, order):
    reads_data, latents = layout
    variables = [*(("x", "y") if reads_data else ()), *latents]
    order.shuffle(variables)
    est = estimator(heads={"h": tuple(variables), "m": ("z",)}, instance_noise=0.0).eval()
    assert est.heads["h"] == tuple(v for v in ("x", "y", "z", "u", "v") if v in variables)
    s = sample(batch)
    t = est.log_ratio("h", s)
    assert t.shape == (batch,)
    assert torch.isfinite(t).all()
    if reads_data:  # precomputed features give the same log-ratios as features computed inside
        assert torch.equal(est.log_ratio("h", s, est.features(s)), t)


def test_features_are_computed_by_the_caller_once_and_reused_by_every_head():
    est = estimator(instance_noise=0.0).eval()
    s, other = sample(6), sample(6, shift=2.0)
    features = est.features(s)
    assert features.shape == (6, 32)
    for head in ("joint", "ci"):  # given features are used as they are, not recomputed from the sample
        assert torch.equal(est.log_ratio(head, s, features), est.log_ratio(head, s))
        assert not torch.allclose(est.log_ratio(head, s, est.features(other)), est.log_ratio(head, s))
    # a head given detached features does not train the shared map (how the I terms read them)
    est.log_ratio("ci", s, features.detach()).sum().backward()
    assert est.x_trunk[0].weight.grad is None
    assert est.head_nets["ci"].body[0].weight.grad is not None
    est.log_ratio("joint", s, features).sum().backward()
    assert est.x_trunk[0].weight.grad is not None


def test_latent_only_heads_do_not_depend_on_x_and_y():
    est = estimator(instance_noise=0.0).eval()
    s = sample(6)
    t = est.log_ratio("m", s)
    assert torch.equal(est.log_ratio("m", s.with_(x=None, y=None)), t)  # no (x, y) needed at all
    assert torch.equal(est.log_ratio("m", s, torch.randn(6, 32)), t)  # features are ignored
    t.sum().backward()
    assert all(p.grad is None for p in [*est.x_trunk.parameters(), *est.y_trunk.parameters(), *est.pair.parameters()])
    latent_only = estimator(heads={"m": ("z",), "w": ("u", "v")})
    assert latent_only.features(s) is None
    assert latent_only.pair is None and not hasattr(latent_only, "x_trunk")  # no trunk is built


def test_instance_noise_makes_the_critic_random_and_zero_noise_deterministic():
    s = sample(8)
    quiet, noisy = estimator(instance_noise=0.0).eval(), estimator(instance_noise=0.25).eval()
    for head in HEADS:
        assert torch.equal(quiet.log_ratio(head, s), quiet.log_ratio(head, s))
        assert not torch.equal(noisy.log_ratio(head, s), noisy.log_ratio(head, s))
    assert not torch.equal(noisy.features(s), noisy.features(s))  # x and y are noisy too
    features = noisy.features(s)  # ...and so is every latent, with the features held fixed
    assert not torch.equal(noisy.log_ratio("joint", s, features), noisy.log_ratio("joint", s, features))


def test_instance_noise_has_the_requested_std():
    torch.manual_seed(0)
    noise = estimator(instance_noise=0.4).noisy(torch.full((200_000,), 3.0))
    assert noise.mean().item() == pytest.approx(3.0, abs=0.01)
    assert noise.std().item() == pytest.approx(0.4, abs=0.01)


def test_latent_embeddings_are_spectrally_normalised_when_asked():
    torch.manual_seed(0)
    est = estimator()
    for head in est.head_nets.values():
        assert nn.utils.parametrize.is_parametrized(head.embedding, "weight")
        with torch.no_grad():  # a raw weight of spectral norm far from 1
            head.embedding.parametrizations.weight.original.mul_(10.0)
    for _ in range(10):  # each training-mode forward runs one power iteration
        for head in HEADS:
            est.log_ratio(head, sample(4))
    for head in est.head_nets.values():
        assert torch.linalg.matrix_norm(head.embedding.weight.detach(), ord=2).item() == pytest.approx(1.0, abs=0.01)
    plain = estimator(spectral_norm=False)
    assert not any(nn.utils.parametrize.is_parametrized(head.embedding) for head in plain.head_nets.values())


def test_the_loss_is_the_logistic_loss():
    t_p, t_q = torch.tensor([1.5, -0.5, 0.0]), torch.tensor([0.3, -2.0])
    expected = np.mean(np.log1p(np.exp(-t_p.numpy()))) + np.mean(np.log1p(np.exp(t_q.numpy())))
    est = estimator()
    assert est.critic_loss(t_p, t_q).item() == pytest.approx(expected, rel=1e-6)
    assert est.critic_loss(torch.zeros(3), torch.zeros(2)).item() == pytest.approx(2 * math.log(2))


def test_interaction_appends_a_multiplicative_pair_term_to_the_shared_features():
    plain, mixed = estimator(), estimator(interaction=6)
    assert plain.interaction is None and plain.features(sample(4)).shape == (4, 32)
    assert mixed.features(sample(4)).shape == (4, 32 + 6)
    with torch.no_grad():  # the appended part is (P h_x) * (Q h_y): zero when Q's output is zero
        mixed.interaction.q.weight.zero_()
        mixed.interaction.q.bias.zero_()
    assert torch.equal(mixed.eval().features(sample(4))[:, 32:], torch.zeros(4, 6))


def test_a_critic_with_interaction_learns_which_y_pairs_with_which_x():
    """Paired (x, y = x[:4] + noise) against y shuffled within the batch: same marginals, only the pairing differs."""
    torch.manual_seed(0)
    est = estimator(heads={"pair": ("x", "y")}, interaction=8, instance_noise=0.0)
    optimiser = torch.optim.Adam(est.parameters(), lr=2e-3)

    def pairs(n: int) -> tuple[Sample, Sample]:
        x = torch.randn(n, 4)
        paired = Sample(x=x, y=torch.cat([x, torch.randn(n, 1)], 1) + 0.1 * torch.randn(n, 5))
        return paired, paired.with_(y=paired.y[torch.randperm(n)])

    for _ in range(300):
        paired, shuffled = pairs(128)
        loss = est.critic_loss(est.log_ratio("pair", paired), est.log_ratio("pair", shuffled))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    paired, shuffled = pairs(2000)
    with torch.no_grad():
        on_paired, on_shuffled = est.log_ratio("pair", paired), est.log_ratio("pair", shuffled)
    assert ((on_paired > 0).float().mean() + (on_shuffled <= 0).float().mean()) / 2 > 0.8
