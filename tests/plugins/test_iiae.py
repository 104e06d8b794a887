"""The IIAE baseline: model ``iiae`` and its loss term ``IIAE`` (closed forms, schedule, training, resume).

The host loads only the plugins these tests need (through their real entry points), so an unrelated
plugin failing to import cannot hide a problem here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from torch import Tensor
from typer.testing import CliRunner

from wynerkit import BimodalModel, BuildContext, Sample
from wynerkit.cli.app import build_app
from wynerkit.data.loading import as_sample, epoch_batches, fetch
from wynerkit.errors import UsageError
from wynerkit.plugins import PluginHost, discover
from wynerkit.runs.create import create_run_dir
from wynerkit.runs.training_run import train_run
from wynerkit.sample import VARIABLES
from wynerkit.spec.loading import load_spec
from wynerkit.spec.models import SpecBuilder
from wynerkit.sweeps.baselines import read_baseline
from wynerkit.sweeps.plan import plan_sweep
from wynerkit.testing import check_component
from wynerkit.training.assembly import assemble
from wynerkit.training.step import TrainingStep
from wynerkit.training.trainer import Trainer
from wynerkit_plugins.models.iiae import (
    IIAE,
    LOGVAR_MAX,
    DiagonalGaussian,
    IIAELoss,
    IIAELossParams,
    IIAEParams,
    anneal_weight,
    kl_divergence,
    kl_to_standard_normal,
    make_iiae,
)

SPECS = Path(__file__).parent.parent / "specs"
IIAE_TINY = SPECS / "iiae-tiny.yaml"
TINY = SPECS / "tiny.yaml"
SHIPPED = Path(__file__).parent.parent.parent / "specs"
BASELINES, OVERLAYS = SHIPPED / "baselines", SHIPPED / "overlays"
QUICKSTART = SHIPPED / "quickstart.yaml"
PLUGINS = {
    "gaussian-pairs",
    "digit-pairs",
    "vector-modality",
    "image-modality",
    "adversarial-js",
    "variational-wyner",
    "wyner-degenerate-local",
    "divergence-terms",
    "information-terms",
    "reconstruction-terms",
    "code-matching-terms",
    "coherence",
    "iiae",
}
X_DIM, Y_DIM = 6, 5  # different sizes, so a swapped x and y cannot go unnoticed


@pytest.fixture(scope="module")
def host() -> PluginHost:
    loaded = PluginHost.load([s for s in discover(builtin_only=True) if s.name in PLUGINS], blocked=())
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return loaded


def build(host: PluginHost, seed: int = 0, **overrides: Any) -> IIAE:
    variant = SpecBuilder(host.registry).variant(host.registry.get("model", "iiae"))
    spec = {"name": "iiae", "x": {"name": "vector", "dim": X_DIM}, "y": {"name": "vector", "dim": Y_DIM}, **overrides}
    torch.manual_seed(seed)
    return make_iiae(variant.model_validate(spec), BuildContext(registry=host.registry, seed=seed))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def data(n: int, seed: int = 1) -> tuple[Tensor, Tensor]:
    g = seeded(seed)
    return torch.randn(n, X_DIM, generator=g), torch.randn(n, Y_DIM, generator=g)


def gaussians(draw: st.DrawFn, n: int, d: int) -> DiagonalGaussian:
    values = st.floats(-3, 3, allow_nan=False, allow_subnormal=False)
    mean = torch.tensor(draw(st.lists(values, min_size=n * d, max_size=n * d)), dtype=torch.float64).view(n, d)
    logvar = torch.tensor(draw(st.lists(values, min_size=n * d, max_size=n * d)), dtype=torch.float64).view(n, d)
    return DiagonalGaussian(mean, logvar)


def as_torch(q: DiagonalGaussian) -> torch.distributions.Distribution:
    return torch.distributions.Independent(torch.distributions.Normal(q.mean, torch.exp(0.5 * q.logvar)), 1)


# --- closed forms and the schedule -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 4), d=st.integers(1, 5))
def test_kl_closed_forms_match_torch_distributions(data: st.DataObject, n: int, d: int) -> None:
    q, p = data.draw(st.composite(gaussians)(n, d)), data.draw(st.composite(gaussians)(n, d))
    standard = DiagonalGaussian(torch.zeros(n, d, dtype=torch.float64), torch.zeros(n, d, dtype=torch.float64))
    torch.testing.assert_close(kl_divergence(q, p), torch.distributions.kl_divergence(as_torch(q), as_torch(p)))
    torch.testing.assert_close(
        kl_to_standard_normal(q), torch.distributions.kl_divergence(as_torch(q), as_torch(standard))
    )
    torch.testing.assert_close(kl_to_standard_normal(q), kl_divergence(q, standard))
    assert kl_divergence(q, q).abs().max() < 1e-9


def test_heads_clamp_the_log_variance_at_log_10000() -> None:
    q = DiagonalGaussian.from_head(torch.tensor([[1.0, -2.0, 50.0, -50.0]]))
    torch.testing.assert_close(q.mean, torch.tensor([[1.0, -2.0]]))
    torch.testing.assert_close(q.logvar, torch.tensor([[LOGVAR_MAX, -50.0]]))
    assert math.log(10000) == pytest.approx(9.21035, abs=1e-5)


@pytest.mark.parametrize(
    ("step", "anneal_steps", "expected"),
    [(0, 2000, 0.0), (1, 2000, 1 - math.exp(-1 / 2000)), (2000, 2000, 1 - math.exp(-1)), (6000, 2000, 1 - math.exp(-3)),
     (0, 0, 1.0), (7, 0, 1.0)],
)  # fmt: skip
def test_anneal_weight_values(step: int, anneal_steps: int, expected: float) -> None:
    assert float(anneal_weight(torch.tensor(step), anneal_steps)) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_the_counter_advances_once_per_generator_step_in_training_mode_only(host: PluginHost) -> None:
    model = build(host)
    x, y = data(8)
    batch = Sample(x=x, y=y)
    term = IIAELoss(anneal_steps=10)
    step = TrainingStep(model, None, batch)
    for expected in range(3):
        assert int(model.anneal_step) == expected
        assert float(anneal_weight(model.anneal_step, term.anneal_steps)) == pytest.approx(1 - math.exp(-expected / 10))
        step.begin_generator_phase()
        term.generator_loss(step)
    assert int(model.anneal_step) == 3
    step.begin_critic_phase()
    term.generator_loss(step)
    model.eval()
    term.generator_loss(TrainingStep(model, None, batch))
    assert int(model.anneal_step) == 3, "critic phase and eval mode must not advance the schedule"
    assert "anneal_step" in model.state_dict(), "the counter must be saved in checkpoints"


def test_the_loss_is_the_documented_combination(host: PluginHost) -> None:
    model = build(host).eval()  # eval: codes are the means
    model.anneal_step.fill_(4)
    x, y = data(8)
    term = IIAELoss(beta=0.3, lam=2.0, recon_scale=7.0, anneal_steps=5)
    loss = term.generator_loss(TrainingStep(model, None, Sample(x=x, y=y)))
    q = model.posteriors(x, y)
    x_hat = model.decode(q.shared.mean, u=q.exclusive_x.mean).x
    y_hat = model.decode(q.shared.mean, v=q.exclusive_y.mean).y
    mse = (x_hat - x).square().mean() + (y_hat - y).square().mean()
    r = 1 - math.exp(-4 / 5)
    expected = (
        2.3 * 7.0 * mse
        + r * 2.3 * (kl_to_standard_normal(q.exclusive_x).mean() + kl_to_standard_normal(q.exclusive_y).mean())
        + r * 0.3 * kl_to_standard_normal(q.shared).mean()
        + 2.0 * (kl_divergence(q.shared, q.shared_x).mean() + kl_divergence(q.shared, q.shared_y).mean())
    )
    torch.testing.assert_close(loss, expected)


def test_the_loss_uses_squared_error_even_for_an_l1_modality(host: PluginHost) -> None:
    l2 = build(host, seed=3).eval()
    l1 = build(
        host, seed=3, x={"name": "vector", "dim": X_DIM, "loss": "l1"}, y={"name": "vector", "dim": Y_DIM, "loss": "l1"}
    ).eval()
    x, y = data(8)
    losses = [IIAELoss().generator_loss(TrainingStep(m, None, Sample(x=x, y=y))) for m in (l2, l1)]
    torch.testing.assert_close(losses[0], losses[1])


# --- the model -----------------------------------------------------------------------------------


def test_registers_with_params_defaults_from_the_notes(host: PluginHost) -> None:
    component = host.registry.get("model", "iiae")
    assert component.params is IIAEParams
    assert component.plugin == "iiae"
    params = (
        SpecBuilder(host.registry)
        .variant(component)
        .model_validate({"name": "iiae", "x": {"name": "vector", "dim": 4}, "y": {"name": "vector", "dim": 4}})
    )
    assert set(type(params).model_fields) == {"name", "latent", "x", "y"}, "the loss weights are the term's params"
    assert host.registry.get("objective_term", "IIAE").plugin == "iiae"
    assert host.registry.get("objective_term", "IIAE").params is IIAELossParams
    term = check_component(host, "objective_term", "IIAE")
    assert isinstance(term, IIAELoss)
    assert (term.beta, term.lam, term.recon_scale, term.anneal_steps) == (0.5, 1.0, 10.0, 2000)
    assert term.multiplier is None and dict(term.critic_heads) == {}, "no critic, not scaled by lambda_ci/lambda_rec"


def test_honours_the_wynerkit_model_contract(host: PluginHost) -> None:
    spec = {"latent": {"z": 3, "u": 2, "v": 4}, "x": {"name": "vector", "dim": 5}, "y": {"name": "vector", "dim": 7}}
    assert isinstance(check_component(host, "model", "iiae", spec), BimodalModel)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 9), z=st.integers(1, 6), u=st.integers(1, 6), v=st.integers(1, 6), training=st.booleans())
def test_every_sampler_returns_all_five_variables_with_their_shapes(
    host: PluginHost, n: int, z: int, u: int, v: int, training: bool
) -> None:
    model = build(host, latent={"z": z, "u": u, "v": v}).train(training)
    assert model.latent == {"z": z, "u": u, "v": v}
    x, y = data(n)
    want = {"x": (n, X_DIM), "y": (n, Y_DIM), "z": (n, z), "u": (n, u), "v": (n, v)}
    samples = {
        "variational": model.variational(x, y),
        "joint": model.joint(n, seeded(0)),
        "x_to_y": model.x_to_y(x, seeded(0)),
        "y_to_x": model.y_to_x(y, seeded(0)),
        "decode": model.decode(torch.randn(n, z), torch.randn(n, u), torch.randn(n, v)),
    }
    for which, sample in samples.items():
        assert {name: tuple(t.shape) for name, t in sample.items()} == want, which
    for given_data in ({"x": x}, {"y": y}, {"x": x, "y": y}):
        assert model.encode_z(**given_data).shape == (n, z)
    assert model.encode_u(torch.randn(n, z), x).shape == (n, u)
    assert model.encode_v(torch.randn(n, z), y).shape == (n, v)


def test_eval_mode_uses_posterior_means_and_training_samples(host: PluginHost) -> None:
    model = build(host, latent={"z": 3, "u": 2, "v": 4}).eval()
    x, y = data(6)
    s = model.variational(x, y)
    q = model.posteriors(x, y)
    torch.testing.assert_close(s.z, q.shared.mean)
    torch.testing.assert_close(s.z, model.encode_z(x=x, y=y))
    torch.testing.assert_close(s.u, q.exclusive_x.mean)
    torch.testing.assert_close(s.v, q.exclusive_y.mean)
    t = model.x_to_y(x, seeded(0))
    torch.testing.assert_close(t.z, model.encode_z(x=x))
    torch.testing.assert_close(t.u, model.encode_u(t.z, x))
    torch.testing.assert_close(t.v, torch.randn(6, 4, generator=seeded(0)))  # the only draw: v's prior
    torch.testing.assert_close(t.y, model.decode(t.z, v=t.v).y)
    back = model.y_to_x(y, seeded(0))
    torch.testing.assert_close(back.z, model.encode_z(y=y))
    torch.testing.assert_close(back.u, torch.randn(6, 2, generator=seeded(0)))
    model.train()
    first, second = model.x_to_y(x, seeded(0)), model.x_to_y(x, seeded(1))
    assert not torch.allclose(first.z, second.z), "training mode draws reparameterised samples"
    torch.testing.assert_close(model.x_to_y(x, seeded(0)).z, first.z)


def test_exclusive_encoders_ignore_z_and_joint_shared_is_its_own_network(host: PluginHost) -> None:
    model = build(host, latent={"z": 3, "u": 2, "v": 4}).eval()
    x, y = data(5)
    z, other = torch.randn(5, 3, generator=seeded(0)), torch.randn(5, 3, generator=seeded(1))
    torch.testing.assert_close(model.encode_u(z, x), model.encode_u(other, x))
    torch.testing.assert_close(model.encode_v(z, y), model.encode_v(other, y))
    assert not torch.allclose(model.encode_z(x=x, y=y), model.encode_z(x=x))


def test_joint_draws_every_latent_from_its_prior(host: PluginHost) -> None:
    model = build(host, latent={"z": 3, "u": 2, "v": 4}).eval()
    s = model.joint(7, seeded(3))
    g = seeded(3)
    for name, size in (("z", 3), ("u", 2), ("v", 4)):
        torch.testing.assert_close(getattr(s, name), torch.randn(7, size, generator=g))
    decoded = model.decode(s.z, s.u, s.v)
    for name in VARIABLES:
        torch.testing.assert_close(getattr(decoded, name), getattr(s, name))


# --- the UsageError ------------------------------------------------------------------------------


def test_the_iiae_term_with_another_model_is_a_usage_error(host: PluginHost, tmp_path: Path) -> None:
    loaded = load_spec(TINY, host.registry, ["objective.terms={IIAE: 1}", "estimator=null"])
    parts = assemble(loaded.spec, host.registry)
    with pytest.raises(UsageError, match=r"model is VariationalWyner.*use model\.name: iiae"):
        IIAELoss().generator_loss(TrainingStep(parts.model, None, Sample(x=torch.randn(4, 8), y=torch.randn(4, 8))))
    result = CliRunner().invoke(
        build_app(host),
        ["run", str(TINY), "--out", str(tmp_path), "--set", "objective.terms={IIAE: 1}", "--set", "estimator=null"],
    )
    assert result.exit_code == 2, result.output
    assert "VariationalWyner" in result.stderr and "use model.name: iiae" in result.stderr


# --- training and resume -------------------------------------------------------------------------


def test_the_loss_decreases_over_30_steps_on_the_tiny_gaussian_spec(host: PluginHost, tmp_path: Path) -> None:
    spec = load_spec(IIAE_TINY, host.registry).spec
    parts = assemble(spec, host.registry)
    assert parts.estimator is None, "IIAE uses no critic"
    trainer = Trainer(parts, tmp_path)
    batches = _batches(trainer, 30)

    def loss_on_first_batch() -> float:  # eval mode: codes are means, no sampling noise
        parts.model.eval()
        with torch.no_grad():
            value = float(IIAELoss().generator_loss(TrainingStep(parts.model, None, batches[0])))
        parts.model.train()
        return value

    before = loss_on_first_batch()
    losses = [float(trainer.iteration(batch, number)["loss.generator"]) for number, batch in enumerate(batches, 1)]
    assert int(parts.model.anneal_step) == 30, "one count per generator step; eval-mode calls do not count"
    assert loss_on_first_batch() < 0.8 * before
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5]), losses


def _batches(trainer: Trainer, n: int) -> list[Sample]:
    split = trainer.train_split
    order = epoch_batches(split, trainer.train_spec.batch_size, 0, 0)
    return [as_sample(fetch(split, order[i % len(order)]), trainer.parts.device) for i in range(n)]


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_resume_continues_the_anneal_counter_like_an_uninterrupted_run(host: PluginHost, tmp_path: Path) -> None:
    # r matters within 20 steps
    settings_ = ["objective.terms.IIAE.anneal_steps=8", "train.max_steps=20", "train.log_every=2"]
    reference = load_spec(IIAE_TINY, host.registry, settings_)
    reference_dir = create_run_dir(tmp_path / "reference", reference.spec, reference.source, host)
    train_run(reference_dir, reference.spec, host.registry)

    short = load_spec(IIAE_TINY, host.registry, [*settings_, "train.max_steps=10"])
    run_dir = create_run_dir(tmp_path / "resumed", short.spec, short.source, host)
    train_run(run_dir, short.spec, host.registry)
    first = load_file(str(run_dir / "checkpoints" / "step-00000010" / "model.safetensors"))
    assert int(first["anneal_step"]) == 10
    spec_file = run_dir / "spec.yaml"  # a longer budget, as if the run had been killed at step 10
    edited = yaml.safe_load(spec_file.read_text())
    edited["train"]["max_steps"] = 20
    spec_file.write_text(yaml.safe_dump(edited))
    result = CliRunner().invoke(build_app(host), ["run", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output

    final = run_dir / "checkpoints" / "step-00000020"
    for weights in ("model", "ema"):
        assert int(load_file(str(final / f"{weights}.safetensors"))["anneal_step"]) == 20, weights
    resumed, uninterrupted = _metrics(run_dir), _metrics(reference_dir)
    assert [r["step"] for r in resumed] == [r["step"] for r in uninterrupted]
    for mine, theirs in zip(resumed, uninterrupted, strict=True):
        for key, value in theirs.items():
            assert mine[key] == pytest.approx(value, abs=1e-5, rel=0), (mine["step"], key)


# --- the sweep baseline overlays -------------------------------------------------------------------


def overlaid(base: Path, name: str, host: PluginHost) -> Any:
    """``base`` with an overlay file applied the way ``wynerkit sweep --baseline`` applies it (unset, then set)."""
    plan = plan_sweep(base, host.registry, [], [read_baseline(OVERLAYS / name)], [])
    return next(cell.spec for cell in plan.cells if cell.cell.baseline is not None)


@pytest.mark.parametrize(
    ("name", "model"),
    [("iiae.yaml", "iiae"), ("degenerate-local.yaml", "wyner-degenerate-local"), ("lambda-ci-0.yaml", None)],
)
@pytest.mark.parametrize("base", [QUICKSTART, TINY])
def test_each_overlay_turns_a_wyner_spec_into_its_baseline(
    host: PluginHost, name: str, model: str | None, base: Path
) -> None:
    original = load_spec(base, host.registry).spec
    spec = overlaid(base, name, host)
    assert spec.model.name == (model or original.model.name)
    for field in ("latent", "x", "y"):  # specs of two loads are instances of distinct classes: compare dumps
        assert getattr(spec.model, field).model_dump() == getattr(original.model, field).model_dump(), field
    assert spec.train.model_dump() == original.train.model_dump()
    assert spec.data.model_dump() == original.data.model_dump()
    if model == "iiae":
        weights = {"weight": 1.0, "beta": 0.5, "lam": 1.0, "recon_scale": 10.0, "anneal_steps": 2000}
        assert spec.objective.model_dump()["terms"] == {"IIAE": weights}, "gr8joo/IIAE's weights, in the spec"
        assert (spec.objective.critic_terms, spec.estimator) == (None, None)
        if base == TINY:  # cheap to build: it builds without an estimator
            assert assemble(spec, host.registry).estimator is None
    if name == "lambda-ci-0.yaml":
        assert spec.objective.lambda_ci == 0 and spec.objective.terms == original.objective.terms


def test_iiae_quickstart_is_the_quickstart_with_the_iiae_overlay(host: PluginHost) -> None:
    mine = load_spec(BASELINES / "iiae-quickstart.yaml", host.registry).spec
    made = overlaid(QUICKSTART, "iiae.yaml", host)
    assert (mine.seed, mine.estimator, made.estimator) == (made.seed, None, None)
    for field in ("data", "model"):  # specs of two loads are instances of distinct classes: compare dumps
        assert getattr(mine, field).model_dump() == getattr(made, field).model_dump(), field
    assert (mine.objective.model_dump()["terms"], mine.objective.critic_terms) == (
        made.objective.model_dump()["terms"],
        None,
    )
    ignored = {"critic_lr"}  # no critic: the quickstart's critic learning rate does not apply
    assert mine.train.model_dump(exclude=ignored) == made.train.model_dump(exclude=ignored)


# --- the loss weights live in the spec -----------------------------------------------------------


def test_the_spec_gives_the_iiae_term_its_weights(host: PluginHost) -> None:
    terms = "objective.terms={IIAE: {weight: 2, beta: 0.3, lam: 2, recon_scale: 7, anneal_steps: 5}}"
    parts = assemble(load_spec(IIAE_TINY, host.registry, [terms]).spec, host.registry)
    (weighted,) = parts.objective.generator_terms
    assert (weighted.name, weighted.weight) == ("IIAE", 2.0)
    assert weighted.term == IIAELoss(beta=0.3, lam=2.0, recon_scale=7.0, anneal_steps=5)
    bare = assemble(load_spec(IIAE_TINY, host.registry, ["objective.terms={IIAE: 1}"]).spec, host.registry)
    assert bare.objective.generator_terms[0].term == IIAELoss(), "a bare weight takes gr8joo/IIAE's defaults"


def test_loss_weights_on_the_model_are_refused_with_where_they_went(host: PluginHost) -> None:
    result = CliRunner().invoke(
        build_app(host), ["spec", "validate", str(IIAE_TINY), "--set", "model.beta=0.3", "--set", "model.lam=2"]
    )
    assert result.exit_code == 2, result.output
    assert "model: beta, lam: IIAE's loss weights are params of the term IIAE now" in result.stderr
    assert "objective.terms: {IIAE: {weight: 1, beta: 0.3, lam: 2}}" in result.stderr
