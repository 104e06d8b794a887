"""The objective: weights and multipliers, critic terms, shared samples, and each term's formula."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from wynerkit import BuildContext
from wynerkit.assembly import assemble
from wynerkit.errors import UsageError
from wynerkit.objective import build_objective
from wynerkit.spec_loading import load_spec
from wynerkit.step import TrainingStep

TINY = Path(__file__).parent / "specs" / "tiny.yaml"
ALL_TERMS = ["D_joint", "D_x2y", "D_y2x", "D_cross", "I_joint", "I_x2y", "I_y2x", "I_var", "M_x2y", "M_y2x"]
ALL_TERMS += ["R_xy2x", "R_xy2y", "R_x2x", "R_y2y", "R_x2y", "R_y2x", "R_zuv"]


def parts_for(host, *overrides: str):
    return assemble(load_spec(TINY, host.registry, list(overrides)).spec, host.registry)


def a_step(parts, seed: int = 0) -> TrainingStep:
    data = parts.data.split("train")
    x = torch.stack([data[i]["x"] for i in range(16)])
    y = torch.stack([data[i]["y"] for i in range(16)])
    from wynerkit.sample import Sample

    return TrainingStep(parts.model, parts.estimator, Sample(x=x, y=y), torch.Generator().manual_seed(seed))


def test_lambda_ci_scales_information_terms_and_lambda_rec_reconstruction_terms(builtin_host):
    parts = parts_for(
        builtin_host,
        "objective.lambda_ci=0.5",
        "objective.lambda_rec=8",
        "objective.terms={D_x2y: 2, I_x2y: 3, R_x2y: 1}",
    )
    weights = {t.name: t.weight for t in parts.objective.generator_terms}
    assert weights == {"D_x2y": 2.0, "I_x2y": 1.5, "R_x2y": 8.0}


def test_lambda_ci_zero_drops_the_information_terms_and_their_critics(builtin_host):
    parts = parts_for(builtin_host, "objective.lambda_ci=0")
    assert not [t for t in parts.objective.generator_terms if t.name.startswith("I_")]
    assert sorted(parts.objective.critic_terms) == ["D_joint", "D_x2y", "D_y2x"]
    assert sorted(parts.estimator.heads) == ["D_joint", "D_x2y", "D_y2x"]


def test_critic_terms_default_to_the_weighted_terms_with_critics_and_can_be_overridden(builtin_host):
    default = parts_for(builtin_host)
    assert sorted(default.objective.critic_terms) == ["D_joint", "D_x2y", "D_y2x", "I_joint", "I_x2y", "I_y2x"]
    # the paper's retrieval setting trains D_joint's critic although the generator does not use it
    chosen = parts_for(
        builtin_host,
        "objective.terms={D_x2y: 1, D_y2x: 1, D_cross: 1, I_x2y: 1, I_y2x: 1, R_x2y: 8}",
        "objective.critic_terms=[D_joint, D_x2y, D_y2x, I_x2y, I_y2x]",
    )
    assert list(chosen.objective.critic_terms) == ["D_joint", "D_x2y", "D_y2x", "I_x2y", "I_y2x"]
    assert set(chosen.estimator.heads) == {"D_joint", "D_x2y", "D_y2x", "D_cross", "I_x2y", "I_y2x"}


def test_every_term_gives_a_finite_scalar_and_each_distribution_is_sampled_once(builtin_host, monkeypatch):
    terms = "{" + ", ".join(f"{t}: 1" for t in ALL_TERMS) + "}"
    parts = parts_for(builtin_host, f"objective.terms={terms}")
    calls: dict[str, int] = {}
    for name in ("variational", "joint", "x_to_y", "y_to_x"):
        original = getattr(parts.model, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(parts.model, name, counted)
    step = a_step(parts)
    step.begin_critic_phase()
    critic_total, _, accuracies = parts.objective.critic_loss(step)
    step.begin_generator_phase()
    total, values = parts.objective.generator_loss(step)
    assert set(values) == set(ALL_TERMS)
    assert all(v.shape == () and torch.isfinite(v) for v in values.values())
    assert torch.isfinite(total) and torch.isfinite(critic_total)
    assert all(0 <= a <= 1 for a in accuracies.values())
    # one draw of each distribution serves both phases and all terms; R_zuv encodes its joint sample again
    assert calls == {"variational": 2, "joint": 1, "x_to_y": 1, "y_to_x": 1}


def test_the_critic_phase_trains_only_the_critic(builtin_host):
    parts = parts_for(builtin_host)
    step = a_step(parts)
    step.begin_critic_phase()
    total, _, _ = parts.objective.critic_loss(step)
    total.backward()
    assert all(p.grad is None for p in parts.model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in parts.estimator.parameters())


class LinearRatio:
    """A stand-in estimator whose log-ratio is the sum of z: divergence formulas become checkable."""

    heads = {"D_x2y": ("x", "y", "z", "u", "v"), "I_x2y": ("x", "y", "z"), "M_x2y": ("z",)}  # noqa: RUF012

    def features(self, sample):
        return None

    def log_ratio(self, head, sample, features=None):
        return sample.z.sum(dim=1)

    def critic_loss(self, on_p, on_q):
        return on_p.mean() - on_q.mean()

    def parameters(self):
        return iter(())


@torch.no_grad()
def test_terms_compute_the_formulas_of_the_method_notes(builtin_host):
    parts = parts_for(builtin_host)
    registry = builtin_host.registry
    step = TrainingStep(parts.model, LinearRatio(), a_step(parts).batch, torch.Generator().manual_seed(0))
    make = lambda name: registry.get("objective_term", name).factory(None, None)  # noqa: E731
    variational, x2y, joint = step.sample("variational"), step.sample("x2y"), step.sample("joint")
    # D: mean log-ratio on the variational sample minus the mean on the model's
    expected = variational.z.sum(1).mean() - x2y.z.sum(1).mean()
    assert make("D_x2y").generator_loss(step) == pytest.approx(float(expected))
    # I: mean log-ratio on the tuples themselves
    assert make("I_x2y").generator_loss(step) == pytest.approx(float(x2y.z.sum(1).mean()))
    # M: q(z|x) against the prior, whose draws are the joint model's z
    assert make("M_x2y").generator_loss(step) == pytest.approx(float(x2y.z.sum(1).mean() - joint.z.sum(1).mean()))
    # R_x2y: y against y(z(x), v(z(x), y)) under the modality's own loss
    model, (x, y) = parts.model, step.batch.require("x", "y")
    z = model.encode_z(x=x)
    y_hat = model.decode(z, v=model.encode_v(z, y)).y
    expected_r = (y_hat - y).square().mean()  # the vector modality's L2, averaged over items
    assert make("R_x2y").generator_loss(step) == pytest.approx(float(expected_r), rel=1e-5)
    # R_zuv: the joint draw's codes against the joint encoding of its decoding
    again = model.variational(joint.x, joint.y)
    codes, back = torch.cat([joint.z, joint.u, joint.v], 1), torch.cat([again.z, again.u, again.v], 1)
    assert make("R_zuv").generator_loss(step) == pytest.approx(float((codes - back).square().mean()), rel=1e-5)


def test_a_term_needing_a_critic_without_an_estimator_is_a_clear_error(builtin_host):
    spec = load_spec(TINY, builtin_host.registry, ["estimator=null"]).spec
    with pytest.raises(UsageError, match="add an estimator"):
        assemble(spec, builtin_host.registry)


def test_an_objective_with_only_zero_weights_is_refused(builtin_host):
    spec = load_spec(TINY, builtin_host.registry, ["objective.terms={R_x2y: 0}"]).spec
    with pytest.raises(UsageError, match="every weight is 0"):
        build_objective(spec.objective, BuildContext(registry=builtin_host.registry))
