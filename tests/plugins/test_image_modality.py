"""The ``image`` modality: presets and their networks, canvas fitting, losses, grids and params validation."""

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
from wynerkit.testing import check_component, check_modality, load_plugin
from wynerkit_plugins.modalities import image
from wynerkit_plugins.modalities.image import ImageModality, ImageParams, make_image_modality
from wynerkit_plugins.modalities.image_nets import Fit, Geometry

SMALL = settings(max_examples=20, deadline=None)
MNIST_LIKE = {"channels": 1, "height": 28, "canvas": 32}
SVHN_LIKE = {"channels": 3, "height": 32}
SKETCH_LIKE = {"channels": 1, "height": 64}
PRESETS = ("cpu", "paper", "mlp", "conv")


def build(**params: object) -> ImageModality:
    context = wynerkit.BuildContext(registry=Registry(), seed=0)
    return make_image_modality(ImageParams(**params), context)


def layers(net: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kind)]


def test_satisfies_the_modality_contract_through_the_plugin_host():
    host = load_plugin(image, "image-under-test", with_builtins=False)
    component = host.registry.get("modality", "image")
    assert component.summary.startswith("Images in [-1, 1]")
    built = check_component(host, "modality", "image", MNIST_LIKE)
    assert isinstance(built, wynerkit.Modality)
    assert built.shape == (1, 28, 28)
    assert built.value_range == (-1.0, 1.0)


def test_builtin_host_registers_image(builtin_host):
    assert builtin_host.registry.get("modality", "image").plugin == "image-modality"


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("shape", [MNIST_LIKE, SVHN_LIKE, SKETCH_LIKE], ids=["mnist", "svhn", "sketch"])
def test_every_preset_honours_the_contract(shape: dict[str, int], preset: str):
    modality = build(**shape, preset=preset)
    torch.manual_seed(0)
    check_modality(modality)
    for trunk in (modality.encoder_trunk(), modality.critic_trunk()):
        assert isinstance(trunk, nn.Module) and isinstance(trunk, wynerkit.FeatureNet)


@pytest.mark.parametrize(
    ("shape", "architecture"),
    [(MNIST_LIKE, "mlp"), ({"channels": 1, "height": 28}, "mlp"), (SVHN_LIKE, "conv"), (SKETCH_LIKE, "conv")],
)
def test_cpu_preset_is_mlp_for_small_grayscale_and_conv_otherwise(shape: dict[str, int], architecture: str):
    modality = build(**shape)
    assert modality.architecture == architecture
    assert f"'cpu' -> '{architecture}'" in repr(modality)


def test_schema_carries_field_descriptions_and_defaults():
    schema = ImageParams.model_json_schema()
    assert set(schema["required"]) == {"channels", "height"}
    for name in ("channels", "height", "width", "canvas", "fit", "preset", "loss", "features"):
        assert schema["properties"][name].get("description"), name
    params = ImageParams(channels=1, height=28)
    assert (params.width, params.canvas, params.fit, params.preset, params.loss, params.features) == (
        None,
        None,
        "pad",
        "cpu",
        "l1",
        400,
    )
    with pytest.raises(ValidationError):
        params.height = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        {},  # channels and height are required
        {"channels": 1},
        {"channels": 0, "height": 28},
        {"channels": 1, "height": 0},
        {"channels": 1, "height": 28, "width": 0},
        {"channels": 1, "height": 28, "fit": "crop"},
        {"channels": 1, "height": 28, "preset": "gpu"},
        {"channels": 1, "height": 28, "loss": "huber"},
        {"channels": 1, "height": 28, "features": 0},
        {"channels": 1, "height": 28, "surely_not_a_field": 1},
    ],
)
def test_params_reject_bad_values_and_unknown_fields(bad: dict[str, object]):
    with pytest.raises(ValidationError):
        ImageParams(**bad)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"channels": 1, "height": 28, "canvas": 24, "preset": "paper"}, "canvas 24 is smaller than the image"),
        ({"channels": 1, "height": 16, "canvas": 24, "preset": "paper"}, r"canvas must be a power of two >= 16"),
        ({"channels": 1, "height": 8, "preset": "paper"}, r"power of two >= 16 .* got 8 \(the default"),
        ({"channels": 1, "height": 28, "preset": "paper"}, "set e.g. canvas: 32"),
        ({"channels": 1, "height": 20, "width": 30, "canvas": 24, "preset": "mlp"}, r"\(20x30\).* >= 30"),
        ({"channels": 3, "height": 28}, r"'conv' architecture \(preset 'cpu' picks 'conv'"),
        ({"channels": 1, "height": 4, "preset": "conv"}, r"power of two >= 8 .*canvas: 8"),
        ({"channels": 1, "height": 48}, "canvas: 64"),
    ],
)
def test_unusable_canvases_are_rejected_naming_the_field(params: dict[str, object], message: str):
    with pytest.raises(ValidationError, match=message):
        ImageParams(**params)


def test_mlp_accepts_any_canvas_at_least_the_image():
    modality = build(channels=2, height=20, width=27, canvas=30, preset="mlp")
    assert modality.shape == (2, 20, 27) and modality.geometry.side == 30
    check_modality(modality)


def test_paper_trunks_match_the_authors_architecture():
    modality = build(**SVHN_LIKE, preset="paper")
    encoder, critic = modality.encoder_trunk(), modality.critic_trunk()
    assert encoder.out_features == 1024 and critic.out_features == 1024
    for trunk in (encoder, critic):
        convs = layers(trunk, nn.Conv2d)
        assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 32), (32, 64), (64, 128), (128, 256)]
        assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) and c.padding == (2, 2) for c in convs)
        slopes = [m.negative_slope for m in layers(trunk, nn.LeakyReLU)]
        assert slopes == [pytest.approx(0.2)] * 4
    assert [bn.num_features for bn in layers(encoder, nn.BatchNorm2d)] == [64, 128, 256]
    assert not layers(critic, nn.BatchNorm2d)
    assert build(**SKETCH_LIKE, preset="paper").encoder_trunk().out_features == 256 * 4 * 4


def test_paper_decoder_starts_at_512_channels_and_ends_with_tanh():
    decoder = build(**SVHN_LIKE, preset="paper").decoder(24)
    (linear,) = layers(decoder, nn.Linear)
    assert (linear.in_features, linear.out_features) == (24, 512 * 4 * 4)
    convs = layers(decoder, nn.ConvTranspose2d)
    assert [(c.in_channels, c.out_channels) for c in convs] == [(512, 256), (256, 128), (128, 3)]
    assert all(c.kernel_size == (5, 5) and c.output_padding == (1, 1) for c in convs)
    assert len(layers(decoder, nn.BatchNorm2d)) == 3
    assert len(layers(decoder, nn.Tanh)) == 1


@pytest.mark.parametrize(("height", "widths"), [(8, [32]), (32, [32, 64, 128]), (64, [32, 64, 128, 256])])
def test_conv_preset_halves_down_to_four_by_four(height: int, widths: list[int]):
    modality = build(channels=3, height=height, preset="conv")
    for trunk in (modality.encoder_trunk(), modality.critic_trunk()):
        convs = layers(trunk, nn.Conv2d)
        assert [c.out_channels for c in convs] == widths
        assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
        assert trunk.out_features == widths[-1] * 16
        assert trunk(torch.zeros(2, 3, height, height)).shape == (2, widths[-1] * 16)
    assert len(layers(modality.encoder_trunk(), nn.ReLU)) == len(widths)
    assert len(layers(modality.critic_trunk(), nn.LeakyReLU)) == len(widths)
    decoder = modality.decoder(10)
    assert [c.out_channels for c in layers(decoder, nn.ConvTranspose2d)] == [*widths[::-1][1:], 3]
    assert decoder(torch.zeros(2, 10)).shape == (2, 3, height, height)


def test_mlp_preset_uses_features_hidden_units():
    modality = build(**MNIST_LIKE, preset="mlp", features=50)
    trunk = modality.encoder_trunk()
    assert trunk.out_features == 50
    assert [(m.in_features, m.out_features) for m in layers(trunk, nn.Linear)] == [(32 * 32, 50)]
    decoder = modality.decoder(24)
    assert [(m.in_features, m.out_features) for m in layers(decoder, nn.Linear)] == [(24, 50), (50, 32 * 32)]


@pytest.mark.parametrize("preset", PRESETS)
def test_each_call_returns_fresh_independent_networks(preset: str):
    modality = build(**MNIST_LIKE, preset=preset)
    for make in (modality.encoder_trunk, modality.critic_trunk, lambda: modality.decoder(8)):
        torch.manual_seed(0)
        a = make()
        b = make()
        assert {id(p) for p in a.parameters()}.isdisjoint(id(p) for p in b.parameters())
        first_a, first_b = next(a.parameters()), next(b.parameters())
        assert not torch.equal(first_a, first_b), "two networks share their initial weights"


@pytest.mark.parametrize("preset", ["paper", "conv"])
def test_critic_output_of_an_item_does_not_depend_on_the_rest_of_the_batch(preset: str):
    critic = build(**MNIST_LIKE, preset=preset).critic_trunk()  # in training mode on purpose
    a = torch.rand(4, 1, 28, 28) * 2 - 1
    b = torch.cat([a[:1], -a[1:]])
    torch.testing.assert_close(critic(a)[0], critic(b)[0])


@pytest.mark.parametrize("fit", ["pad", "resize"])
@pytest.mark.parametrize("preset", PRESETS)
def test_decoders_output_data_shaped_images_in_range(preset: str, fit: str):
    decoder = build(**MNIST_LIKE, preset=preset, fit=fit).decoder(5)
    decoder.eval()
    out = decoder(torch.randn(3, 5) * 10)
    assert out.shape == (3, 1, 28, 28)
    assert out.min() >= -1 and out.max() <= 1


def test_pad_then_crop_is_the_identity_and_pads_with_minus_one():
    geometry = Geometry(channels=1, height=28, width=28, side=32, fit="pad")
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    canvas = geometry.to_canvas()(x)
    assert canvas.shape == (4, 1, 32, 32)
    torch.testing.assert_close(canvas[:, :, 2:30, 2:30], x)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (canvas[:, :, border] == -1).all()
    assert torch.equal(geometry.to_data()(canvas), x)


@SMALL
@given(height=st.integers(1, 12), width=st.integers(1, 12), extra=st.integers(0, 7), channels=st.integers(1, 3))
def test_fitting_round_trips_for_any_sizes(height: int, width: int, extra: int, channels: int):
    side = max(height, width) + extra
    geometry = Geometry(channels=channels, height=height, width=width, side=side, fit="pad")
    x = torch.rand(2, channels, height, width)
    canvas = geometry.to_canvas()(x)
    assert canvas.shape == (2, channels, side, side)
    assert torch.equal(geometry.to_data()(canvas), x)
    assert (canvas == -1).sum() == 2 * channels * (side * side - height * width)


def test_resize_fit_keeps_shapes_and_constants():
    geometry = Geometry(channels=3, height=28, width=20, side=32, fit="resize")
    x = torch.full((2, 3, 28, 20), 0.25)
    canvas = geometry.to_canvas()(x)
    assert canvas.shape == (2, 3, 32, 32)
    torch.testing.assert_close(canvas, torch.full_like(canvas, 0.25))
    back = geometry.to_data()(canvas)
    assert back.shape == x.shape
    torch.testing.assert_close(back, x)
    smooth = torch.linspace(-1, 1, 28).view(1, 1, 28, 1).expand(1, 3, 28, 20)
    assert (geometry.to_data()(geometry.to_canvas()(smooth)) - smooth).abs().max() < 0.1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_resize_fit_keeps_a_low_precision_batch_in_its_dtype(dtype):
    """Under bf16 autocast the decoder's output is bf16; antialiased shrinking has no CPU kernel for it."""
    geometry = Geometry(channels=1, height=28, width=28, side=32, fit="resize")
    canvas = torch.linspace(-1, 1, 32 * 32).view(1, 1, 32, 32).repeat(2, 1, 1, 1)
    shrunk = geometry.to_data()(canvas.to(dtype))
    assert shrunk.dtype == dtype and shrunk.shape == (2, 1, 28, 28)
    torch.testing.assert_close(shrunk.float(), geometry.to_data()(canvas), atol=1e-2, rtol=1e-2)


def test_trunks_reject_batches_of_the_wrong_shape():
    trunk = build(**MNIST_LIKE).encoder_trunk()
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        trunk(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        Fit(1, (28, 28), (32, 32), "pad")(torch.zeros(1, 28, 28))


def test_gradients_reach_the_decoder_through_the_crop():
    decoder = build(**MNIST_LIKE, preset="conv").decoder(4)
    decoder(torch.randn(2, 4)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in decoder.parameters())


def test_reconstruction_loss_matches_hand_computed_values():
    output = torch.zeros(2, 1, 2, 2)
    target = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]], [[[2.0, 2.0], [2.0, 2.0]]]])
    l1 = build(channels=1, height=2, preset="mlp").reconstruction_loss(output, target)
    l2 = build(channels=1, height=2, preset="mlp", loss="l2").reconstruction_loss(output, target)
    torch.testing.assert_close(l1, torch.tensor([2.5 / 4, 2.0]))
    torch.testing.assert_close(l2, torch.tensor([2.25 / 4, 4.0]))


@SMALL
@given(
    batch=st.integers(1, 4),
    loss=st.sampled_from(["l1", "l2"]),
    seed=st.integers(0, 2**16),
    same=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_loss_is_non_negative_symmetric_and_zero_exactly_on_equal_items(
    batch: int, loss: str, seed: int, same: list[bool]
):
    modality = build(channels=3, height=4, width=5, preset="mlp", loss=loss)
    generator = torch.Generator().manual_seed(seed)
    a = torch.rand(batch, 3, 4, 5, generator=generator) * 2 - 1
    b = torch.rand(batch, 3, 4, 5, generator=generator) * 2 - 1
    equal = torch.tensor(same[:batch])
    b[equal] = a[equal]
    value = modality.reconstruction_loss(a, b)
    assert value.shape == (batch,)
    assert (value >= 0).all()
    assert torch.equal(value == 0, equal)
    torch.testing.assert_close(value, modality.reconstruction_loss(b, a))
    expected = ((a - b).abs() if loss == "l1" else (a - b) ** 2).flatten(1).mean(dim=1)
    torch.testing.assert_close(value, expected)


@pytest.mark.parametrize(
    ("output_shape", "target_shape"),
    [
        ((2, 1, 28, 28), (2, 1, 32, 32)),
        ((2, 3, 28, 28), (2, 3, 28, 28)),
        ((2, 28, 28), (2, 28, 28)),
        ((2, 1, 28, 28), (3, 1, 28, 28)),
    ],
)
def test_reconstruction_loss_names_the_expected_shape(output_shape: tuple[int, ...], target_shape: tuple[int, ...]):
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        build(**MNIST_LIKE).reconstruction_loss(torch.zeros(output_shape), torch.zeros(target_shape))


@SMALL
@given(height=st.integers(1, 9), width=st.integers(1, 9), batch=st.integers(1, 10), nrow=st.integers(1, 5))
def test_to_grid_size_follows_the_layout(height: int, width: int, batch: int, nrow: int):
    grid = build(channels=1, height=height, width=width, preset="mlp").to_grid(
        torch.zeros(batch, 1, height, width), nrow
    )
    cols = min(nrow, batch)
    rows = math.ceil(batch / cols)
    gap = image.GAP
    assert grid.dtype == np.uint8
    assert grid.shape == (rows * (height + gap) + gap, cols * (width + gap) + gap, 3)
    assert (grid[:gap] == image.SEPARATOR).all() and (grid[:, :gap] == image.SEPARATOR).all()
    assert (grid[-gap:] == image.SEPARATOR).all() and (grid[:, -gap:] == image.SEPARATOR).all()


def test_to_grid_maps_pixel_values_and_replicates_grayscale():
    batch = torch.stack([torch.full((1, 3, 4), -1.0), torch.full((1, 3, 4), 1.0), torch.zeros(1, 3, 4)])
    batch[2, 0, 1, 2] = 5.0  # clamped to white
    batch[2, 0, 0, 0] = -0.5
    grid = build(channels=1, height=3, width=4, preset="mlp").to_grid(batch, nrow=2)
    assert grid.shape == (2 * 5 + 2, 2 * 6 + 2, 3)
    assert (grid[2:5, 2:6] == 0).all()  # item 0: row 0, column 0, all -1
    assert (grid[2:5, 8:12] == 255).all()  # item 1: row 0, column 1, all +1
    item2 = grid[7:10, 2:6]  # item 2: row 1, column 0
    assert item2[0, 0].tolist() == [64, 64, 64]
    assert item2[1, 2].tolist() == [255, 255, 255]
    assert item2[2, 3].tolist() == [128, 128, 128]
    assert (grid[7:10, 8:12] == image.SEPARATOR).all()  # the empty cell stays background
    assert (grid[5:7] == image.SEPARATOR).all() and (grid[:, 6:8] == image.SEPARATOR).all()


def test_to_grid_keeps_rgb_channels_apart():
    batch = torch.full((1, 3, 2, 2), -1.0)
    batch[0, 0] = 1.0  # red
    batch[0, 2, 0, 0] = 0.0  # half blue in the top-left pixel
    grid = build(channels=3, height=2, preset="mlp").to_grid(batch, nrow=4)
    assert grid.shape == (6, 6, 3)
    assert grid[2, 2].tolist() == [255, 0, 128]
    assert grid[3, 3].tolist() == [255, 0, 0]


def test_to_grid_accepts_tensors_that_require_grad_and_nan():
    batch = torch.zeros(2, 1, 28, 28, requires_grad=True) * 2
    assert build(**MNIST_LIKE).to_grid(batch, nrow=1).shape == (2 * 30 + 2, 32, 3)
    assert build(**MNIST_LIKE).to_grid(torch.full((1, 1, 28, 28), float("nan")), nrow=1)[2, 2].tolist() == [0, 0, 0]


@pytest.mark.parametrize("shape", [(1, 28, 28), (2, 1, 32, 32), (2, 3, 28, 28), (0, 1, 28, 28)])
def test_to_grid_rejects_bad_batches(shape: tuple[int, ...]):
    with pytest.raises(ValueError, match=r"\[B, 1, 28, 28\]"):
        build(**MNIST_LIKE).to_grid(torch.zeros(shape), nrow=2)


def test_to_grid_rejects_bad_nrow():
    with pytest.raises(ValueError, match="nrow"):
        build(**MNIST_LIKE).to_grid(torch.zeros(2, 1, 28, 28), nrow=0)


@pytest.mark.parametrize("preset", PRESETS)
def test_decoder_rejects_empty_inputs(preset: str):
    with pytest.raises(ValueError, match="in_features >= 1"):
        build(**MNIST_LIKE, preset=preset).decoder(0)
