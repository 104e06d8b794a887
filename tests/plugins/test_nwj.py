"""The nwj estimator: adversarial-js's network with the NWJ loss, and its guard against exp overflow.

The shared network (head layouts, features, instance noise, spectral norm) is tested through
adversarial-js in ``test_adversarial_js.py``; recovery of closed-form divergences for both
estimators is in ``tests/test_estimator_statistics.py``.
"""

from __future__ import annotations

import math

import pydantic
import pytest
import torch
import torch.nn.functional as F

import wynerkit_plugins.estimators.adversarial_js as ajs
import wynerkit_plugins.estimators.nwj as nwj
from wynerkit import BuildContext, Sample
from wynerkit.components import Registry
from wynerkit.testing import check_component, load_plugin
from wynerkit_plugins.modalities.vector import VectorModality, VectorParams
from wynerkit_plugins.shared.critic_network import CriticNetwork

LATENT = {"z": 3, "u": 2, "v": 2}
HEADS = {"joint": ("x", "y", "z", "u", "v"), "ci": ("x", "y", "z"), "m": ("z",)}
X, Y = (
    VectorModality(VectorParams(dim=4, hidden=8, features=8)),
    VectorModality(VectorParams(dim=5, hidden=8, features=8)),
)


def build(make, params, heads=HEADS) -> CriticNetwork:
    return make(params, BuildContext(registry=Registry()), x=X, y=Y, latent=LATENT, heads=heads)


def sample(n: int) -> Sample:
    return Sample(x=torch.randn(n, 4), y=torch.randn(n, 5), **{k: torch.randn(n, d) for k, d in LATENT.items()})


def test_registered_among_the_builtins(builtin_host):
    component = builtin_host.registry.get("estimator", "nwj")
    assert component.params is nwj.NWJParams
    assert component.plugin == "nwj"
    assert component.summary == (
        "Density-ratio critics trained on the NWJ (f-divergence) lower bound of the KL divergence."
    )


def test_honours_the_estimator_contract():
    host = load_plugin(nwj, with_builtins=False)
    built = check_component(
        host, "estimator", "nwj", {"hidden": 8, "max_log_ratio": 5}, x=X, y=Y, latent=LATENT, heads=HEADS
    )
    assert built.params.max_log_ratio == 5.0


@pytest.mark.parametrize("bound", [0, -1.0, math.inf, math.nan])
def test_the_bound_must_be_a_positive_number(bound):
    with pytest.raises(pydantic.ValidationError, match="max_log_ratio"):
        nwj.NWJParams(max_log_ratio=bound)


def test_refuses_bad_heads_in_its_own_name():
    with pytest.raises(ValueError, match="nwj needs at least one head"):
        build(nwj.make_nwj, nwj.NWJParams(), heads={})
    with pytest.raises(ValueError, match="a head reads both x and y, or neither"):
        build(nwj.make_nwj, nwj.NWJParams(), heads={"h": ("x", "z")})


def test_is_the_adversarial_js_network_with_a_bounded_output():
    params = {"hidden": 16, "embed": 8, "instance_noise": 0.0}
    torch.manual_seed(0)
    js = build(ajs.make_adversarial_js, ajs.AdversarialJSParams(**params)).eval()
    torch.manual_seed(0)
    ours = build(nwj.make_nwj, nwj.NWJParams(**params, max_log_ratio=4.0)).eval()
    assert isinstance(js, CriticNetwork) and isinstance(ours, CriticNetwork)
    js_state, our_state = js.state_dict(), ours.state_dict()
    assert list(js_state) == list(our_state)
    assert all(torch.equal(js_state[key], our_state[key]) for key in js_state)  # same layers, same initialisation
    s = sample(32)
    for head in HEADS:
        assert torch.allclose(ours.log_ratio(head, s), 4.0 - F.softplus(4.0 - js.log_ratio(head, s)))


def test_the_bound_keeps_small_log_ratios_and_caps_large_ones():
    est = build(nwj.make_nwj, nwj.NWJParams(hidden=8, embed=8, instance_noise=0.0, max_log_ratio=10.0)).eval()
    last = est.head_nets["m"].body[-1]
    s = sample(3)
    for raw, low, high in [(-30.0, -30.0, -30.0), (0.0, -1e-4, 0.0), (5.0, 4.99, 5.0), (1e4, 10.0, 10.0)]:
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.constant_(last.bias, raw)
        t = est.log_ratio("m", s)
        assert ((t >= low - 1e-6) & (t <= high)).all(), (raw, t)


def test_a_critic_far_beyond_the_bound_still_has_finite_loss_and_gradients():
    est = build(nwj.make_nwj, nwj.NWJParams(hidden=8, embed=8))
    torch.nn.init.constant_(est.head_nets["joint"].body[-1].bias, 1e4)  # e^1e4 overflows any float
    p, q = sample(16), sample(16)
    loss = est.critic_loss(est.log_ratio("joint", p), est.log_ratio("joint", q))
    loss.backward()
    assert torch.isfinite(loss)
    assert math.exp(10.0) - 11 <= loss.item() <= math.exp(10.0) - 9  # -E_p[c] + E_q[e^c] - 1 at T = c = 10
    assert all(torch.isfinite(p.grad).all() for p in est.parameters() if p.grad is not None)


def test_the_loss_is_the_negated_nwj_bound():
    t_p, t_q = torch.tensor([1.5, -0.5, 0.0]), torch.tensor([0.3, -2.0])
    est = build(nwj.make_nwj, nwj.NWJParams(hidden=8, embed=8))
    expected = -t_p.mean() + t_q.exp().mean() - 1
    assert est.critic_loss(t_p, t_q).item() == pytest.approx(expected.item(), rel=1e-6)
    assert est.critic_loss(torch.zeros(3), torch.zeros(2)).item() == pytest.approx(0.0, abs=1e-7)
    # At T = log p/q the loss is -KL(p||q): atoms with p = (0.5, 0.5) and q = (0.25, 0.75).
    log_ratio = torch.tensor([0.5 / 0.25, 0.5 / 0.75]).log()
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    t_p, t_q = log_ratio[torch.tensor([0, 1])], log_ratio[torch.tensor([0, 1, 1, 1])]
    assert est.critic_loss(t_p, t_q).item() == pytest.approx(-kl, rel=1e-6)
