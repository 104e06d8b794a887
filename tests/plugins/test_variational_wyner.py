"""The built-in ``variational-wyner`` model: the paper's Table 1 samplers, noise, gradients, spec.

A tiny test-local modality stands in for the built-in ``vector`` one, so these tests depend on the
model plugin alone; one test at the end uses the real ``vector`` modality when it is importable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, PositiveInt, ValidationError
from torch import Tensor, nn

import wynerkit_plugins.models.variational_wyner as vw_plugin
from wynerkit import BimodalModel, BuildContext, ComponentParams, Sample
from wynerkit.components import Component
from wynerkit.plugins import PluginHost, PluginSource
from wynerkit.sample import VARIABLES
from wynerkit.spec.models import SpecBuilder
from wynerkit.testing import check_component
from wynerkit_plugins.models.variational_wyner import make_variational_wyner
from wynerkit_plugins.shared.wyner_model import LatentSizes, VariationalWyner, VariationalWynerParams

X_DIM, Y_DIM = 3, 5  # different sizes, so a swapped x and y cannot go unnoticed


class TinyParams(ComponentParams):
    dim: PositiveInt


class TinyTrunk(nn.Sequential):
    def __init__(self, dim: int, out_features: int = 6) -> None:
        super().__init__(nn.Linear(dim, out_features), nn.Tanh())
        self.out_features = out_features


class TinyModality:
    """A flat vector modality with one-layer trunks: the smallest thing that satisfies ``Modality``."""

    value_range = (float("-inf"), float("inf"))

    def __init__(self, dim: int) -> None:
        self.shape = (dim,)

    def encoder_trunk(self) -> TinyTrunk:
        return TinyTrunk(self.shape[0])

    def critic_trunk(self) -> TinyTrunk:
        return TinyTrunk(self.shape[0])

    def decoder(self, in_features: int) -> nn.Module:
        return nn.Linear(in_features, self.shape[0])

    def reconstruction_loss(self, output: Tensor, target: Tensor) -> Tensor:
        return (output - target).pow(2).mean(dim=1)

    def to_grid(self, batch: Tensor, nrow: int) -> np.ndarray:
        return np.zeros((1, 1, 3), dtype=np.uint8)


def make_tiny(params: TinyParams, context: BuildContext) -> TinyModality:
    return TinyModality(params.dim)


@pytest.fixture(scope="module")
def host() -> PluginHost:
    """The model plugin loaded through its hook, plus the tiny modality added to that registry."""
    host = PluginHost.load([PluginSource.from_object("variational-wyner", vw_plugin)], blocked=())
    assert not host.errors, [str(e) for e in host.errors]
    tiny = Component(
        kind="modality", name="tiny", factory=make_tiny, params=TinyParams, summary="tiny", plugin="test", version="0"
    )
    host.registry.add(tiny)
    return host


@pytest.fixture(scope="module")
def variant(host: PluginHost) -> type[BaseModel]:
    return SpecBuilder(host.registry).variant(host.registry.get("model", "variational-wyner"))


def spec(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "variational-wyner",
        "x": {"name": "tiny", "dim": X_DIM},
        "y": {"name": "tiny", "dim": Y_DIM},
        **overrides,
    }


def build(host: PluginHost, variant: type[BaseModel], seed: int = 0, **overrides: Any) -> VariationalWyner:
    torch.manual_seed(seed)
    params = variant.model_validate(spec(**overrides))
    return make_variational_wyner(params, BuildContext(registry=host.registry, seed=seed))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def data(n: int, seed: int = 1) -> tuple[Tensor, Tensor]:
    g = seeded(seed)
    return torch.randn(n, X_DIM, generator=g), torch.randn(n, Y_DIM, generator=g)


def assert_same(a: Sample, b: Sample) -> None:
    for name in VARIABLES:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), msg=f"variable {name} differs")


@pytest.fixture(scope="module")
def model(host: PluginHost, variant: type[BaseModel]) -> VariationalWyner:
    return build(host, variant, latent={"z": 4, "u": 2, "v": 3})


# --- registration and spec -------------------------------------------------------------------


def test_registers_through_its_hook_with_the_docstring_summary(host: PluginHost) -> None:
    component = host.registry.get("model", "variational-wyner")
    assert component.params is VariationalWynerParams
    assert component.summary == (
        "The variational Wyner model: joint, conditional and local encoders with deterministic decoders."
    )


def test_honours_the_wynerkit_model_contract(host: PluginHost) -> None:
    built = check_component(host, "model", "variational-wyner", spec(name="variational-wyner", noise_dim=2))
    assert isinstance(built, BimodalModel)


def test_nested_modalities_are_validated_and_defaults_follow_the_paper(variant: type[BaseModel]) -> None:
    params = variant.model_validate(spec())
    assert (params.x.name, params.x.dim, params.y.dim) == ("tiny", X_DIM, Y_DIM)
    assert params.latent.model_dump() == {"z": 16, "u": 8, "v": 8}
    assert params.noise_dim == 0


@pytest.mark.parametrize(
    ("overrides", "error_type", "loc"),
    [
        ({"latent": {"z": 4, "w": 2}}, "extra_forbidden", ("latent", "w")),
        ({"latent": {"z": 0}}, "greater_than", ("latent", "z")),
        ({"noise_dim": -1}, "greater_than_equal", ("noise_dim",)),
        ({"x": {"name": "tiny", "dim": 3, "depth": 2}}, "extra_forbidden", ("x", "tiny", "depth")),
        ({"y": {"name": "no-such-modality"}}, "union_tag_invalid", ("y",)),
    ],
)
def test_spec_rejects_bad_params(
    variant: type[BaseModel], overrides: dict[str, Any], error_type: str, loc: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        variant.model_validate(spec(**overrides))
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [(error_type, loc)]


def test_x_and_y_are_required(variant: type[BaseModel]) -> None:
    with pytest.raises(ValidationError) as caught:
        variant.model_validate({"name": "variational-wyner"})
    assert sorted((e["type"], e["loc"]) for e in caught.value.errors()) == [("missing", ("x",)), ("missing", ("y",))]


# --- shapes ----------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 9),
    z=st.integers(1, 6),
    u=st.integers(1, 6),
    v=st.integers(1, 6),
    noise_dim=st.integers(0, 3),
)
def test_every_sampler_returns_all_five_variables_with_their_shapes(
    host: PluginHost, variant: type[BaseModel], n: int, z: int, u: int, v: int, noise_dim: int
) -> None:
    model = build(host, variant, latent={"z": z, "u": u, "v": v}, noise_dim=noise_dim)
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
        got = {name: tuple(t.shape) for name, t in sample.items()}
        assert got == want, which
    for given_data in ({"x": x}, {"y": y}, {"x": x, "y": y}):
        assert model.encode_z(**given_data).shape == (n, z)


# --- Table 1 structure -----------------------------------------------------------------------


def test_x_to_y_encodes_the_given_x_and_decodes_y_from_z_and_a_prior_v(model: VariationalWyner) -> None:
    x, _ = data(6)
    s = model.x_to_y(x, seeded(0))
    assert s.x is x
    torch.testing.assert_close(s.z, model.encode_z(x=x))
    torch.testing.assert_close(s.u, model.encode_u(s.z, x))
    torch.testing.assert_close(s.v, torch.randn(6, 3, generator=seeded(0)))  # the only draw: v's prior
    torch.testing.assert_close(s.y, model.decode(s.z, v=s.v).y)


def test_y_to_x_encodes_the_given_y_and_decodes_x_from_z_and_a_prior_u(model: VariationalWyner) -> None:
    _, y = data(6)
    s = model.y_to_x(y, seeded(0))
    assert s.y is y
    torch.testing.assert_close(s.z, model.encode_z(y=y))
    torch.testing.assert_close(s.v, model.encode_v(s.z, y))
    torch.testing.assert_close(s.u, torch.randn(6, 2, generator=seeded(0)))
    torch.testing.assert_close(s.x, model.decode(s.z, u=s.u).x)


def test_joint_draws_every_latent_from_its_prior_and_decodes_consistently(model: VariationalWyner) -> None:
    s = model.joint(7, seeded(3))
    g = seeded(3)
    for name, size in (("z", 4), ("u", 2), ("v", 3)):
        torch.testing.assert_close(getattr(s, name), torch.randn(7, size, generator=g))
    assert_same(model.decode(s.z, s.u, s.v), s)


def test_variational_keeps_the_data_and_encodes_jointly(model: VariationalWyner) -> None:
    x, y = data(5)
    s = model.variational(x, y)
    assert s.x is x
    assert s.y is y
    torch.testing.assert_close(s.z, model.encode_z(x=x, y=y))
    torch.testing.assert_close(s.u, model.encode_u(s.z, x))
    torch.testing.assert_close(s.v, model.encode_v(s.z, y))
    assert not torch.allclose(s.z, model.encode_z(x=x)), "q(z|x,y) must be its own network, not q(z|x)"


def test_local_encoders_condition_on_z(model: VariationalWyner) -> None:
    x, y = data(5)
    z, other_z = torch.randn(5, 4, generator=seeded(0)), torch.randn(5, 4, generator=seeded(1))
    assert not torch.allclose(model.encode_u(z, x), model.encode_u(other_z, x)), "q(u|z,x), not q(u|x)"
    assert not torch.allclose(model.encode_v(z, y), model.encode_v(other_z, y)), "q(v|z,y), not q(v|y)"


def test_degenerate_local_encoders_ignore_z_but_keep_the_rest_of_the_model() -> None:
    """``wyner-degenerate-local``: q(u|x), q(v|y) read the data alone; z still reaches the decoders."""
    torch.manual_seed(0)
    latent = LatentSizes(z=4, u=2, v=3)
    degenerate = VariationalWyner(TinyModality(X_DIM), TinyModality(Y_DIM), latent, local_reads_z=False)
    x, y = data(5)
    z, other_z = torch.randn(5, 4, generator=seeded(0)), torch.randn(5, 4, generator=seeded(1))
    torch.testing.assert_close(degenerate.encode_u(z, x), degenerate.encode_u(other_z, x))
    torch.testing.assert_close(degenerate.encode_v(z, y), degenerate.encode_v(other_z, y))
    assert degenerate.x_branch.local_head.in_features == degenerate.x_branch.trunk.out_features
    u = torch.randn(5, 2, generator=seeded(2))
    assert not torch.allclose(degenerate.decode(z, u=u).x, degenerate.decode(other_z, u=u).x)


def test_decode_outputs_only_what_its_local_codes_allow(model: VariationalWyner) -> None:
    z, u, v = torch.randn(4, 4), torch.randn(4, 2), torch.randn(4, 3)
    only_x = model.decode(z, u=u)
    assert (only_x.x is not None, only_x.y, only_x.v) == (True, None, None)
    only_y = model.decode(z, v=v)
    assert (only_y.y is not None, only_y.x, only_y.u) == (True, None, None)
    with pytest.raises(ValueError, match="needs u"):
        model.decode(z)


def test_encode_z_needs_some_data(model: VariationalWyner) -> None:
    with pytest.raises(ValueError, match="needs x, y or both"):
        model.encode_z()


def test_the_x_trunk_runs_once_per_conditional_sample(model: VariationalWyner) -> None:
    calls: list[int] = []
    handle = model.x_branch.trunk.register_forward_hook(lambda *_: calls.append(1))
    try:
        model.x_to_y(data(4)[0], seeded(0))
    finally:
        handle.remove()
    assert len(calls) == 1


def trunk_calls(model: VariationalWyner, encode: Any) -> tuple[int, Any]:
    """How often the x trunk ran during ``encode()``, and what it returned."""
    calls: list[int] = []
    handle = model.x_branch.trunk.register_forward_hook(lambda *_: calls.append(1))
    try:
        result = encode()
    finally:
        handle.remove()
    return len(calls), result


def encode_three_ways(model: VariationalWyner, x: Tensor, y: Tensor) -> tuple[Tensor, ...]:
    """What one training iteration encodes x for: q_xy->, p_x->y and R_y2x's q(u|z,x)."""
    variational, forward = model.variational(x, y), model.x_to_y(x, seeded(0))
    return variational.u, forward.z, forward.u, model.encode_u(forward.z, x)


def test_reusing_features_runs_each_trunk_once_per_data_tensor_and_changes_no_output(
    model: VariationalWyner,
) -> None:
    x, y = data(6)
    plain_calls, plain = trunk_calls(model, lambda: encode_three_ways(model, x, y))
    with model.reusing_features():
        reused_calls, reused = trunk_calls(model, lambda: encode_three_ways(model, x, y))
        other_calls, _ = trunk_calls(model, lambda: model.encode_z(x=x.clone()))  # another tensor: computed
    assert (plain_calls, reused_calls, other_calls) == (3, 1, 1)
    for a, b in zip(plain, reused, strict=True):
        torch.testing.assert_close(a, b)
    assert model.x_branch._remembered is None and not model.x_branch.remembering, "the scope must let go"
    assert trunk_calls(model, lambda: encode_three_ways(model, x, y))[0] == 3


def test_reused_features_pass_every_use_s_gradient_to_the_trunk(model: VariationalWyner) -> None:
    x, y = data(6)

    def trunk_gradient() -> list[Tensor]:
        model.zero_grad(set_to_none=True)
        sum(t.square().sum() for t in encode_three_ways(model, x, y)).backward()
        return [p.grad.clone() for p in model.x_branch.trunk.parameters()]

    plain = trunk_gradient()
    with model.reusing_features():
        reused = trunk_gradient()
    model.zero_grad(set_to_none=True)
    for a, b in zip(plain, reused, strict=True):
        torch.testing.assert_close(a, b)


# --- randomness ------------------------------------------------------------------------------


@pytest.mark.parametrize("noise_dim", [0, 2])
def test_samplers_are_reproducible_from_a_generator_seed(
    host: PluginHost, variant: type[BaseModel], noise_dim: int
) -> None:
    model = build(host, variant, noise_dim=noise_dim)
    x, y = data(8)
    for sampler in (lambda g: model.joint(8, g), lambda g: model.x_to_y(x, g), lambda g: model.y_to_x(y, g)):
        assert_same(sampler(seeded(5)), sampler(seeded(5)))
        first, other = sampler(seeded(5)), sampler(seeded(6))
        assert not torch.allclose(first.x, other.x) or not torch.allclose(first.y, other.y)


def test_without_a_generator_samplers_follow_the_global_seed(model: VariationalWyner) -> None:
    torch.manual_seed(11)
    first = model.joint(4)
    torch.manual_seed(11)
    assert_same(model.joint(4), first)


def test_encoders_are_deterministic_without_noise(model: VariationalWyner) -> None:
    x, y = data(5)
    torch.testing.assert_close(model.encode_z(x=x), model.encode_z(x=x))
    assert_same(model.variational(x, y), model.variational(x, y))
    a, b = model.x_to_y(x, seeded(0)), model.x_to_y(x, seeded(1))
    torch.testing.assert_close(a.z, b.z)
    torch.testing.assert_close(a.u, b.u)


def test_noise_injection_makes_every_encoder_stochastic(host: PluginHost, variant: type[BaseModel]) -> None:
    model = build(host, variant, noise_dim=3)
    x, y = data(5)
    for given_data in ({"x": x}, {"y": y}, {"x": x, "y": y}):
        assert not torch.allclose(model.encode_z(**given_data), model.encode_z(**given_data))
    first, second = model.variational(x, y), model.variational(x, y)
    for name in ("z", "u", "v"):
        assert not torch.allclose(getattr(first, name), getattr(second, name)), name
    a, b = model.x_to_y(x, seeded(0)), model.x_to_y(x, seeded(1))
    assert not torch.allclose(a.z, b.z)
    assert not torch.allclose(a.u, b.u)


# --- gradients -------------------------------------------------------------------------------


def test_a_loss_on_x_to_y_trains_q_z_given_x_and_the_y_decoder_only(host: PluginHost, variant: type[BaseModel]) -> None:
    model = build(host, variant)
    model.x_to_y(data(6)[0], seeded(0)).y.pow(2).sum().backward()

    def grads(module: nn.Module) -> list[Tensor | None]:
        return [p.grad for p in module.parameters()]

    for module in (model.x_branch.trunk, model.x_branch.z_head, model.y_branch.decoder):
        assert all(g is not None and g.abs().sum() > 0 for g in grads(module)), module
    for module in (model.joint_encoder, model.y_branch.trunk, model.y_branch.z_head, model.x_branch.decoder):
        assert all(g is None for g in grads(module)), module


# --- the real vector modality ----------------------------------------------------------------


def test_builds_with_the_builtin_vector_modality() -> None:
    vector = pytest.importorskip("wynerkit_plugins.modalities.vector")
    host = PluginHost.load(
        [PluginSource.from_object("vector-modality", vector), PluginSource.from_object("variational-wyner", vw_plugin)],
        blocked=(),
    )
    assert not host.errors, [str(e) for e in host.errors]
    model = check_component(
        host,
        "model",
        "variational-wyner",
        {"latent": {"z": 4, "u": 2, "v": 2}, "x": {"name": "vector", "dim": 8}, "y": {"name": "vector", "dim": 6}},
    )
    s = model.x_to_y(torch.randn(5, 8), seeded(0))
    assert s.y.shape == (5, 6)


def test_prior_code_scale_gives_every_code_the_prior_moments_over_a_training_batch(host, variant) -> None:
    """code_scale: prior standardises each head's output per dimension, whatever the encoder's raw scale."""
    model = build(host, variant, code_scale="prior").train()
    x, y = data(256)
    with torch.no_grad():
        for name, code in (
            ("z|xy", model.encode_z(x=x, y=y)),
            ("z|x", model.encode_z(x=x)),
            ("u", model.encode_u(model.encode_z(y=y), x)),
            ("v", model.encode_v(model.encode_z(x=x), y)),
        ):
            torch.testing.assert_close(code.mean(0), torch.zeros(code.shape[1]), atol=1e-5, rtol=0, msg=name)
            torch.testing.assert_close(
                code.var(0, unbiased=False), torch.ones(code.shape[1]), atol=0.02, rtol=0, msg=name
            )
    plain = build(host, variant).train()
    with torch.no_grad():
        assert (plain.encode_z(x=x).std(0) - 1).abs().max() > 0.1  # the paper's free heads keep their own scale


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(s=st.floats(0.05, 0.95))
def test_local_noise_mixes_standardised_codes_with_prior_noise_in_training_only(host, variant, s) -> None:
    model = build(host, variant, code_scale="prior", local_noise=s)
    x, y = data(4096)
    with torch.no_grad():
        z = model.train().encode_z(x=x, y=y)
        first, second = model.encode_u(z, x), model.encode_u(z, x)
        torch.testing.assert_close(
            first.var(0), torch.ones(first.shape[1]), atol=0.1, rtol=0
        )  # still the prior's variance
        spread = (first - second).var(0) / 2  # the two draws differ by the noise alone: var = s^2 per draw
        torch.testing.assert_close(spread, torch.full((first.shape[1],), s * s), atol=0.03 + 0.1 * s * s, rtol=0)
        model.eval()
        torch.testing.assert_close(model.encode_u(z, x), model.encode_u(z, x))  # evaluation: the mean code


def test_xavier_init_zeroes_every_bias_and_changes_the_weights(host, variant) -> None:
    default, xavier = build(host, variant), build(host, variant, init="xavier")
    layers = [m for m in xavier.modules() if isinstance(m, nn.Linear)]
    assert layers and all(torch.count_nonzero(m.bias) == 0 for m in layers)
    assert not torch.equal(default.joint_encoder.head.weight, xavier.joint_encoder.head.weight)
