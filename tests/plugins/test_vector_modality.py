"""The ``vector`` modality: network shapes, reconstruction losses, pictures and params validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from torch import nn

import wynerkit
from wynerkit.components import Registry
from wynerkit.testing import check_component, load_plugin
from wynerkit_plugins.modalities import vector
from wynerkit_plugins.modalities.vector import MLP, VectorModality, VectorParams, make_vector_modality, mlp

SMALL = settings(max_examples=20, deadline=None)


def build(**params: object) -> VectorModality:
    context = wynerkit.BuildContext(registry=Registry(), seed=0)
    return make_vector_modality(VectorParams(**params), context)


def test_satisfies_the_modality_contract_through_the_plugin_host():
    host = load_plugin(vector, "vector-under-test", with_builtins=False)
    component = host.registry.get("modality", "vector")
    assert component.summary.startswith("Feature vectors (MLP encoders, decoders and critics)")
    built = check_component(host, "modality", "vector", {"dim": 6, "hidden": 8, "features": 5})
    assert isinstance(built, wynerkit.Modality)
    assert built.shape == (6,)
    assert built.value_range == (-math.inf, math.inf)


def test_schema_carries_field_descriptions():
    schema = VectorParams.model_json_schema()
    assert set(schema["required"]) == {"dim"}
    for name in ("dim", "hidden", "layers", "features", "decoder_hidden", "loss"):
        assert schema["properties"][name].get("description"), name
    assert schema["properties"]["loss"]["enum"] == ["l2", "l1"]


@pytest.mark.parametrize(
    "bad",
    [
        {},  # dim is required
        {"dim": 0},
        {"dim": -3},
        {"dim": 4, "hidden": 0},
        {"dim": 4, "layers": 0},
        {"dim": 4, "loss": "huber"},
        {"dim": 4, "surely_not_a_field": 1},
    ],
)
def test_params_reject_bad_values_and_unknown_fields(bad: dict[str, object]):
    with pytest.raises(ValidationError):
        VectorParams(**bad)


def test_params_are_immutable_and_have_paper_defaults():
    params = VectorParams(dim=512)
    assert (params.hidden, params.layers, params.features, params.decoder_hidden, params.loss) == (
        512,
        1,
        512,
        128,
        "l2",
    )
    with pytest.raises(ValidationError):
        params.dim = 3  # type: ignore[misc]


@SMALL
@given(
    dim=st.integers(1, 24),
    hidden=st.integers(1, 24),
    layers=st.integers(1, 3),
    features=st.integers(1, 24),
    batch=st.integers(2, 6),
)
def test_trunks_map_batches_to_features(dim: int, hidden: int, layers: int, features: int, batch: int):
    modality = build(dim=dim, hidden=hidden, layers=layers, features=features)
    x = torch.randn(batch, dim)
    for trunk in (modality.encoder_trunk(), modality.critic_trunk()):
        assert isinstance(trunk, wynerkit.FeatureNet)
        assert trunk.out_features == features
        assert trunk(x).shape == (batch, features)
    linears = [m for m in modality.encoder_trunk() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == list(
        zip([dim, *[hidden] * layers], [*[hidden] * layers, features], strict=True)
    )


@SMALL
@given(
    dim=st.integers(1, 24), in_features=st.integers(1, 24), decoder_hidden=st.integers(1, 24), batch=st.integers(1, 6)
)
def test_decoder_maps_features_to_vectors(dim: int, in_features: int, decoder_hidden: int, batch: int):
    decoder = build(dim=dim, decoder_hidden=decoder_hidden).decoder(in_features)
    assert decoder(torch.randn(batch, in_features)).shape == (batch, dim)
    linears = [m for m in decoder if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(in_features, decoder_hidden), (decoder_hidden, dim)]
    assert not isinstance(list(decoder)[-1], nn.LeakyReLU), "decoder output must not be squashed"


def test_encoder_uses_batchnorm_and_critic_does_not():
    modality = build(dim=4, hidden=8, layers=2, features=3)
    encoder, critic = modality.encoder_trunk(), modality.critic_trunk()
    assert sum(isinstance(m, nn.BatchNorm1d) for m in encoder.modules()) == 3
    assert not any(isinstance(m, nn.BatchNorm1d) for m in critic.modules())
    leaky = [m for m in encoder.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == 3 and all(m.negative_slope == pytest.approx(0.2) for m in leaky)
    # Fresh networks each call: no parameter is shared between two trunks.
    assert {id(p) for p in encoder.parameters()}.isdisjoint(id(p) for p in modality.encoder_trunk().parameters())


def test_critic_output_of_an_item_does_not_depend_on_the_rest_of_the_batch():
    critic = build(dim=5, hidden=7, features=3).critic_trunk()
    a = torch.randn(4, 5)
    b = torch.cat([a[:1], torch.randn(3, 5) * 10])
    torch.testing.assert_close(critic(a)[0], critic(b)[0])


def test_mlp_builder_rejects_a_single_width():
    with pytest.raises(ValueError, match="at least an input and an output"):
        mlp([3])
    net = mlp([3, 4, 2], batch_norm=True, activate_last=False)
    assert isinstance(net, MLP) and (net.in_features, net.out_features) == (3, 2)
    assert isinstance(list(net)[-1], nn.Linear)


def test_reconstruction_loss_matches_hand_computed_values():
    output = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    torch.testing.assert_close(build(dim=3).reconstruction_loss(output, target), torch.tensor([13 / 3, 4 / 3]))
    torch.testing.assert_close(
        build(dim=3, loss="l1").reconstruction_loss(output, target), torch.tensor([5 / 3, 2 / 3])
    )


@SMALL
@given(
    dim=st.integers(1, 16),
    batch=st.integers(1, 8),
    loss=st.sampled_from(["l2", "l1"]),
    seed=st.integers(0, 2**16),
)
def test_reconstruction_loss_is_per_item_non_negative_and_zero_on_identity(dim: int, batch: int, loss: str, seed: int):
    modality = build(dim=dim, loss=loss)
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, dim, generator=generator)
    b = torch.randn(batch, dim, generator=generator)
    value = modality.reconstruction_loss(a, b)
    assert value.shape == (batch,)
    assert (value >= 0).all()
    assert torch.equal(modality.reconstruction_loss(a, a), torch.zeros(batch))
    expected = ((a - b) ** 2 if loss == "l2" else (a - b).abs()).mean(dim=1)
    torch.testing.assert_close(value, expected)


def test_l1_and_l2_differ_as_expected():
    target = torch.zeros(1, 2)
    big, small = torch.full((1, 2), 3.0), torch.full((1, 2), 0.5)
    l2, l1 = build(dim=2), build(dim=2, loss="l1")
    assert l2.reconstruction_loss(big, target).item() == pytest.approx(9.0)
    assert l1.reconstruction_loss(big, target).item() == pytest.approx(3.0)
    assert l2.reconstruction_loss(small, target).item() == pytest.approx(0.25)
    assert l1.reconstruction_loss(small, target).item() == pytest.approx(0.5)


def test_reconstruction_loss_carries_gradients():
    output = torch.randn(3, 4, requires_grad=True)
    build(dim=4).reconstruction_loss(output, torch.zeros(3, 4)).sum().backward()
    torch.testing.assert_close(output.grad, 2 * output.detach() / 4)


@pytest.mark.parametrize(
    ("output_shape", "target_shape"),
    [((3, 5), (3, 4)), ((3, 4), (3, 5)), ((4,), (4,)), ((3, 4, 1), (3, 4, 1)), ((2, 4), (3, 4))],
)
def test_reconstruction_loss_names_the_expected_shape(output_shape: tuple[int, ...], target_shape: tuple[int, ...]):
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        build(dim=4).reconstruction_loss(torch.zeros(output_shape), torch.zeros(target_shape))


@SMALL
@given(dim=st.integers(1, 20), batch=st.integers(1, 12), nrow=st.integers(1, 6))
def test_to_grid_lays_out_items_with_separators(dim: int, batch: int, nrow: int):
    grid = build(dim=dim).to_grid(torch.randn(batch, dim), nrow=nrow)
    cols = min(nrow, batch)
    rows = math.ceil(batch / cols)
    assert isinstance(grid, np.ndarray) and grid.dtype == np.uint8
    assert grid.shape == (rows * (vector.STRIP_HEIGHT + 1) + 1, cols * (dim + 1) + 1, 3)
    # Separator lines frame every cell.
    assert (grid[0] == vector.SEPARATOR).all() and (grid[:, 0] == vector.SEPARATOR).all()
    assert (grid[vector.STRIP_HEIGHT + 1] == vector.SEPARATOR).all()


def test_to_grid_colours_follow_values_and_ignore_outliers():
    ramp = torch.linspace(-1.0, 1.0, 100)
    outlier = torch.zeros(100)
    outlier[0] = 1e9  # one wild value must not flatten everything else to one colour
    grid = build(dim=100).to_grid(torch.stack([ramp, outlier]), nrow=2)
    strip = grid[1, 1 : 1 + 100].astype(int)  # first item, top pixel row
    red_minus_blue = strip[:, 0] - strip[:, 2]
    assert red_minus_blue[0] < -100 < 100 < red_minus_blue[-1]
    assert (np.diff(red_minus_blue) >= 0).all()
    assert len({tuple(c) for c in strip}) > 20
    assert (grid[1 : 1 + vector.STRIP_HEIGHT, 1 : 1 + 100] == grid[1, 1 : 1 + 100]).all()


def test_to_grid_handles_constant_and_non_finite_batches():
    modality = build(dim=3)
    constant = modality.to_grid(torch.full((2, 3), 7.0), nrow=1)
    assert constant.shape == (2 * (vector.STRIP_HEIGHT + 1) + 1, 5, 3)
    weird = modality.to_grid(torch.tensor([[float("nan"), float("inf"), -float("inf")], [0.0, 1.0, 2.0]]), nrow=2)
    assert weird.dtype == np.uint8
    assert modality.to_grid(torch.full((1, 3), float("nan")), nrow=3).shape == (vector.STRIP_HEIGHT + 2, 5, 3)


def test_to_grid_accepts_tensors_that_require_grad():
    batch = torch.randn(3, 4, requires_grad=True)
    assert build(dim=4).to_grid(batch * 2, nrow=2).shape[2] == 3


@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 4, 1), (0, 4)])
def test_to_grid_rejects_bad_batches(shape: tuple[int, ...]):
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        build(dim=4).to_grid(torch.zeros(shape), nrow=2)


def test_to_grid_rejects_bad_nrow():
    with pytest.raises(ValueError, match="nrow"):
        build(dim=4).to_grid(torch.zeros(2, 4), nrow=0)
