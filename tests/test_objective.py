"""The objective: weights and multipliers, critic terms, shared samples, and each term's formula."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field

from wynerkit import BuildContext, ComponentParams, NoParams, hookimpl
from wynerkit.data.loading import as_sample, fetch, in_order
from wynerkit.errors import UsageError
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit.spec.loading import load_spec
from wynerkit.spec.models import SpecBuilder
from wynerkit.training.assembly import assemble
from wynerkit.training.objective import build_objective, term_weight
from wynerkit.training.step import TrainingStep
from wynerkit.training.trainer import Trainer

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


# --- terms that take params --------------------------------------------------------------------


@dataclass(frozen=True)
class ConstantTerm:
    """A term whose value is a constant: what reaches it from the spec is visible in its value."""

    value: float
    multiplier: None = None
    critic_heads: ClassVar[dict] = {}

    def generator_loss(self, step):
        return torch.tensor(self.value)

    def critic_loss(self, step):
        return None


class Level(ComponentParams):
    level: float = Field(1.0, description="the term's value")


class RequiredLevel(ComponentParams):
    level: float = Field(description="the term's value")


@pytest.fixture(scope="module")
def params_host() -> PluginHost:
    class Plugin:
        @hookimpl
        def wynerkit_register_objective_terms(self, register):
            register("Level", lambda params, context: ConstantTerm(params.level), params=Level)
            register("Required", lambda params, context: ConstantTerm(params.level), params=RequiredLevel)

    host = PluginHost.load([*discover(builtin_only=True), PluginSource.from_object("levels", Plugin())], blocked=())
    assert not host.errors, [str(e) for e in host.errors]
    return host


def test_a_term_entry_gives_the_factory_its_params_and_a_bare_weight_the_defaults(params_host):
    terms = "objective.terms={R_x2y: 1, Level: {weight: 2, level: 3}, Required: {weight: 0.5, level: 4}}"
    built = {t.name: t for t in parts_for(params_host, terms).objective.generator_terms}
    assert {name: (t.weight, t.term) for name, t in built.items() if name != "R_x2y"} == {
        "Level": (2.0, ConstantTerm(3.0)),
        "Required": (0.5, ConstantTerm(4.0)),
    }
    bare = parts_for(params_host, "objective.terms={Level: 2}").objective.generator_terms
    assert [(t.weight, t.term) for t in bare] == [(2.0, ConstantTerm(1.0))]


def test_term_entries_are_checked_against_the_terms_params(params_host, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        TINY.read_text().replace(
            "  terms: {D_joint: 1,",
            "  terms: {Required: 1, Level: {weight: 1, levle: 2}, R_x2x: {weight: -1}, D_joint: 1,",
        )
    )
    with pytest.raises(UsageError) as caught:
        load_spec(spec, params_host.registry)
    assert str(caught.value).splitlines() == [
        f"{spec}:13:11: objective.terms.Required: term Required needs params (level): write {{weight: 1, ...}} (got 1)",
        f"{spec}:13:43: objective.terms.Level.levle: unknown field 'levle'; term Level takes: level, weight (got 2)",
        f"{spec}:13:62: objective.terms.R_x2x.weight: Input should be greater than or equal to 0 (got -1)",
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(weight=st.floats(0, 1e6, allow_nan=False, allow_infinity=False))
def test_a_bare_weight_and_its_entry_form_weigh_the_same_and_a_bare_one_stays_a_number(builtin_host, weight):
    model = SpecBuilder(builtin_host.registry).objective_model()
    bare = model.model_validate({"terms": {"D_joint": weight}})
    entry = model.model_validate({"terms": {"D_joint": {"weight": weight}}})
    assert term_weight(bare.terms["D_joint"]) == term_weight(entry.terms["D_joint"]) == weight
    # a spec written before terms took params resolves (and hashes) exactly as before
    assert bare.model_dump(mode="json")["terms"] == {"D_joint": weight}


# --- the validation loss is the objective's own terms ---------------------------------------------


def test_validation_terms_are_the_cross_reconstruction_terms_whatever_the_spec_weights(builtin_host):
    parts = parts_for(builtin_host, "objective.terms={D_joint: 1}")
    registry = builtin_host.registry
    expected = {name: registry.get("objective_term", name).factory(NoParams(), None) for name in ("R_x2y", "R_y2x")}
    assert parts.objective.validation_terms == expected


def test_the_validation_loss_is_the_mean_of_the_objectives_validation_terms(builtin_host, tmp_path):
    parts = parts_for(builtin_host)
    trainer = Trainer(parts, tmp_path)
    split, spec = parts.data.split("valid"), parts.spec
    indices = [i for batch in in_order(split, spec.train.batch_size, 2 * spec.train.batch_size) for i in batch]
    step = TrainingStep(trainer.ema.model, None, as_sample(fetch(split, indices), parts.device))
    terms = parts.objective.validation_terms
    expected = float(sum(terms[name].per_item(step).sum() for name in ("R_x2y", "R_y2x"))) / len(indices)
    assert trainer.validation_loss() == pytest.approx(expected, rel=1e-6)
    parts.objective.validation_terms = {"Level": ConstantTerm(2.5)}
    assert trainer.validation_loss() == pytest.approx(2.5)
