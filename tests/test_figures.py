"""Figure 1 panels: tiling, what each row and column shares, reproducibility, PNG files, model mode.

A fake model makes the structure readable from the pixels: x(z, u) is a 1x4x4 image whose top half
is the grey level of z and bottom half that of u (y(z, v) likewise, 1x6x6), and its encoders read
those halves back. A cell's grey levels therefore say which z and which u / v made it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

import wynerkit_plugins.models.variational_wyner as vw_plugin
from wynerkit import BimodalModel, Modality, Sample
from wynerkit.figures.grid import BACKGROUND, GAP, LINE, GridLayout, join, tile
from wynerkit.figures.panels import (
    JOINT_LINE,
    PAIR_GAP,
    PANEL_KINDS,
    conditional_panel,
    draw_panel,
    figure_1,
    joint_panel,
    save_png,
    style_panel,
)
from wynerkit.plugins import PluginHost, PluginSource
from wynerkit.testing import check_component

X_SHAPE = (1, 4, 4)
Y_SHAPE = (1, 6, 6)  # a different size, so cells must be centred and a swapped x / y shows
SHAPES = {"x": X_SHAPE, "y": Y_SHAPE}
ROUTES = {"x2y": ("x", "y"), "y2x": ("y", "x")}
FILES = ("joint.png", "conditional.png", "style.png")


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class GreyImages:
    """Images in [-1, 1] drawn as greys 0..255; only ``to_grid`` matters to figures."""

    value_range = (-1.0, 1.0)

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def encoder_trunk(self) -> nn.Module:
        return nn.Flatten()

    def critic_trunk(self) -> nn.Module:
        return nn.Flatten()

    def decoder(self, in_features: int) -> nn.Module:
        return nn.Linear(in_features, int(np.prod(self.shape)))

    def reconstruction_loss(self, output: Tensor, target: Tensor) -> Tensor:
        return (output - target).pow(2).flatten(1).mean(1)

    def to_grid(self, batch: Tensor, nrow: int) -> np.ndarray:
        assert batch.device.type == "cpu", "pictures are drawn on CPU"
        assert (batch.shape[0], nrow) == (1, 1), "figures draw one item per cell"
        grey = np.rint((batch[0, 0].numpy() + 1.0) * 127.5).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)


def paint(top: Tensor, bottom: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Images whose top half shows ``tanh(top)`` and bottom half ``tanh(bottom)`` (codes ``[B, 1]``)."""
    _, h, w = shape
    half = h // 2
    rows = torch.cat([torch.tanh(top).expand(-1, half), torch.tanh(bottom).expand(-1, h - half)], dim=1)
    return rows[:, None, :, None].expand(-1, 1, h, w).clone()


def read_half(images: Tensor, half: Literal["top", "bottom"]) -> Tensor:
    h = images.shape[2]
    rows = images[:, 0, : h // 2] if half == "top" else images[:, 0, h // 2 :]
    return torch.atanh(rows.mean(dim=(1, 2)).clamp(-0.999999, 0.999999))[:, None]


class FakeWyner(nn.Module):
    """A BimodalModel whose pictures show their codes; records the mode of every decode call."""

    def __init__(self) -> None:
        super().__init__()
        self.latent = {"z": 1, "u": 1, "v": 1}
        self.x_modality = GreyImages(X_SHAPE)
        self.y_modality = GreyImages(Y_SHAPE)
        self.anchor = nn.Parameter(torch.zeros(()))
        self.frozen = nn.Linear(1, 1)
        self.decode_calls: list[tuple[bool, bool]] = []

    def decode(self, z: Tensor, u: Tensor | None = None, v: Tensor | None = None) -> Sample:
        self.decode_calls.append((self.training, torch.is_grad_enabled()))
        x = None if u is None else paint(z, u, X_SHAPE)
        y = None if v is None else paint(z, v, Y_SHAPE)
        return Sample(x=x, y=y, z=z, u=u, v=v)

    def encode_z(self, x: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        return read_half(x if x is not None else y, "top")

    def encode_u(self, z: Tensor, x: Tensor) -> Tensor:
        return read_half(x, "bottom")

    def encode_v(self, z: Tensor, y: Tensor) -> Tensor:
        return read_half(y, "bottom")

    def variational(self, x: Tensor, y: Tensor) -> Sample:
        z = self.encode_z(x, y)
        return Sample(x=x, y=y, z=z, u=self.encode_u(z, x), v=self.encode_v(z, y))

    def joint(self, n: int, generator: torch.Generator | None = None) -> Sample:
        z, u, v = (torch.randn(n, 1, generator=generator) for _ in range(3))
        return self.decode(z, u, v)

    def x_to_y(self, x: Tensor, generator: torch.Generator | None = None) -> Sample:
        z = self.encode_z(x=x)
        return self.decode(z, v=torch.randn(len(x), 1, generator=generator)).with_(x=x, u=self.encode_u(z, x))

    def y_to_x(self, y: Tensor, generator: torch.Generator | None = None) -> Sample:
        z = self.encode_z(y=y)
        return self.decode(z, u=torch.randn(len(y), 1, generator=generator)).with_(y=y, v=self.encode_v(z, y))


@pytest.fixture
def model() -> FakeWyner:
    return FakeWyner()


def data(side: str, n: int, first_code: float) -> Tensor:
    """n items of one side with distinct common and local codes (common: first_code, +0.3, ...)."""
    common = torch.linspace(first_code, first_code + 0.3 * (n - 1), n)[:, None]
    local = torch.linspace(-1.2, 1.2, n)[:, None].flip(0)
    return paint(common, local, SHAPES[side])


def picture(modality: Modality, item: Tensor) -> np.ndarray:
    return modality.to_grid(item[None], nrow=1)


def crop(region: np.ndarray, h: int, w: int) -> np.ndarray:
    """The ``h x w`` picture centred in ``region`` (the inverse of figure_grid.centre)."""
    top, left = (region.shape[0] - h) // 2, (region.shape[1] - w) // 2
    return region[top : top + h, left : left + w]


def greys(item: np.ndarray) -> tuple[int, int]:
    """(top-half grey, bottom-half grey) of a drawn item; each half must be one uniform grey."""
    half = item.shape[0] // 2
    top, bottom = item[:half], item[half:]
    assert (top == top[0, 0]).all() and (bottom == bottom[0, 0]).all(), "a half is not uniform"
    return int(top[0, 0, 0]), int(bottom[0, 0, 0])


def item_in(panel: np.ndarray, layout: GridLayout, row: int, col: int, side: str) -> np.ndarray:
    _, h, w = SHAPES[side]
    return crop(layout.box(panel, row, col), h, w)


def all_distinct(values: list[Any]) -> bool:
    return len(set(values)) == len(values)


# --- tiling --------------------------------------------------------------------------------


def solid(h: int, w: int, grey: int) -> np.ndarray:
    return np.full((h, w, 3), grey, dtype=np.uint8)


def test_tile_centres_mixed_cells_between_separators_and_sets_headers_apart() -> None:
    cells = [[None, solid(2, 4, 10)], [solid(3, 2, 20), solid(4, 4, 30)]]
    grid = tile(cells, header_row=True, header_col=True)
    layout = GridLayout(rows=2, cols=2, cell_h=4, cell_w=4, header_row=True, header_col=True)
    assert grid.shape == (LINE + 2 * (4 + LINE) + GAP, LINE + 2 * (4 + LINE) + GAP, 3)
    assert layout.origin(1, 1) == (LINE + 4 + LINE + GAP, LINE + 4 + LINE + GAP)
    assert (layout.box(grid, 0, 0) == BACKGROUND).all()
    np.testing.assert_array_equal(layout.box(grid, 0, 1)[1:3], solid(2, 4, 10))
    np.testing.assert_array_equal(layout.box(grid, 1, 0)[0:3, 1:3], solid(3, 2, 20))  # odd spare row below
    np.testing.assert_array_equal(layout.box(grid, 1, 1), solid(4, 4, 30))
    painted = sum(int((layout.box(grid, r, c) != BACKGROUND).any(axis=2).sum()) for r in range(2) for c in range(2))
    assert int((grid != BACKGROUND).any(axis=2).sum()) == painted == 8 + 6 + 16, "separators are background"


def test_tile_without_headers_has_no_gap() -> None:
    grid = tile([[solid(2, 2, 0)] * 3] * 2)
    assert grid.shape == (LINE + 2 * (2 + LINE), LINE + 3 * (2 + LINE), 3)
    assert tile([[solid(2, 2, 0)] * 3] * 2, line=3).shape == (3 + 2 * 5, 3 + 3 * 5, 3)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([[solid(2, 2, 0)], [solid(2, 2, 0), solid(2, 2, 0)]], "common, non-zero length"),
        ([], "common, non-zero length"),
        ([[None, None]], "at least one picture"),
        ([[np.zeros((2, 2), dtype=np.uint8)]], r"uint8 array \[h, w, 3\]"),
        ([[np.zeros((2, 2, 3), dtype=np.float32)]], r"uint8 array \[h, w, 3\]"),
    ],
)
def test_tile_rejects_bad_grids(cells: list[list[Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tile(cells)


def test_join_centres_pictures_across_and_down() -> None:
    across = join([solid(2, 3, 0), solid(4, 1, 50)], "across", 2)
    assert across.shape == (4, 3 + 2 + 1, 3)
    np.testing.assert_array_equal(across[1:3, :3], solid(2, 3, 0))
    assert (across[:, 3:5] == BACKGROUND).all()
    down = join([solid(2, 3, 0), solid(1, 5, 50)], "down", 1)
    assert down.shape == (2 + 1 + 1, 5, 3)
    np.testing.assert_array_equal(down[:2, 1:4], solid(2, 3, 0))
    np.testing.assert_array_equal(down[3:], solid(1, 5, 50))


# --- the panels ------------------------------------------------------------------------------


def test_joint_panel_rows_share_z_and_columns_share_u_and_v(model: FakeWyner) -> None:
    rows, cols = 3, 4
    panel = joint_panel(model, rows, cols, seeded(2))
    layout = GridLayout(rows=rows, cols=cols, cell_h=6, cell_w=4 + PAIR_GAP + 6, line=JOINT_LINE)
    assert panel.shape == (*layout.shape, 3)
    x_codes = [[greys(crop(layout.box(panel, r, c)[:, :4], 4, 4)) for c in range(cols)] for r in range(rows)]
    y_codes = [[greys(layout.box(panel, r, c)[:, 4 + PAIR_GAP :]) for c in range(cols)] for r in range(rows)]
    for r in range(rows):
        assert [z for z, _ in x_codes[r]] == [x_codes[r][0][0]] * cols, "z varies along a row"
        assert [z for z, _ in y_codes[r]] == [x_codes[r][0][0]] * cols, "x and y of a row disagree on z"
    for c in range(cols):
        assert len({x_codes[r][c][1] for r in range(rows)}) == 1, "u varies down a column"
        assert len({y_codes[r][c][1] for r in range(rows)}) == 1, "v varies down a column"
    assert all_distinct([x_codes[r][0][0] for r in range(rows)]), "rows share a z"
    assert all_distinct([x_codes[0][c][1] for c in range(cols)]), "columns share a u"
    assert all_distinct([y_codes[0][c][1] for c in range(cols)]), "columns share a v"


@pytest.mark.parametrize("direction", ["x2y", "y2x"])
def test_conditional_panel_starts_rows_with_the_input_and_shares_a_prior_style_per_column(
    model: FakeWyner, direction: Literal["x2y", "y2x"]
) -> None:
    source, target = ROUTES[direction]
    rows, cols = 3, 5
    inputs = data(source, rows, first_code=-0.5)
    panel = conditional_panel(model, inputs, direction, cols, seeded(1))
    layout = GridLayout(rows=rows, cols=cols + 1, cell_h=6, cell_w=6, header_col=True)
    assert panel.shape == (*layout.shape, 3)
    source_modality = getattr(model, f"{source}_modality")
    styles_by_column: list[set[int]] = [set() for _ in range(cols)]
    for r in range(rows):
        shown = item_in(panel, layout, r, 0, source)
        np.testing.assert_array_equal(shown, picture(source_modality, inputs[r]))
        input_z, _ = greys(shown)
        for c in range(cols):
            z, style = greys(item_in(panel, layout, r, c + 1, target))
            assert z == input_z, f"row {r} column {c}: the common code does not follow the input"
            styles_by_column[c].add(style)
    assert all(len(s) == 1 for s in styles_by_column), "a column's style varies across rows"
    assert all_distinct([s.pop() for s in styles_by_column]), "columns share a style"


@pytest.mark.parametrize("direction", ["x2y", "y2x"])
def test_style_panel_transfers_each_reference_style_down_its_column(
    model: FakeWyner, direction: Literal["x2y", "y2x"]
) -> None:
    source, target = ROUTES[direction]
    rows, cols = 2, 3
    inputs, references = data(source, rows, first_code=-0.4), data(target, cols, first_code=0.8)
    panel = style_panel(model, inputs, references, direction)
    layout = GridLayout(rows=rows + 1, cols=cols + 1, cell_h=6, cell_w=6, header_row=True, header_col=True)
    assert panel.shape == (*layout.shape, 3)
    assert (layout.box(panel, 0, 0) == BACKGROUND).all()
    modality = {"x": model.x_modality, "y": model.y_modality}
    for c in range(cols):
        np.testing.assert_array_equal(
            item_in(panel, layout, 0, c + 1, target), picture(modality[target], references[c])
        )
    for r in range(rows):
        shown = item_in(panel, layout, r + 1, 0, source)
        np.testing.assert_array_equal(shown, picture(modality[source], inputs[r]))
        for c in range(cols):
            got = greys(item_in(panel, layout, r + 1, c + 1, target))
            assert got == (greys(shown)[0], greys(picture(modality[target], references[c]))[1])
    reference_styles = [greys(picture(modality[target], ref))[1] for ref in references]
    assert all_distinct(reference_styles), "the test's references must differ in style"


def test_panels_check_their_inputs(model: FakeWyner) -> None:
    with pytest.raises(ValueError, match=r"batch of x items \[B, 1, 4, 4\]"):
        conditional_panel(model, data("y", 2, 0.0), "x2y", 3, seeded(0))
    with pytest.raises(ValueError, match="references must be a non-empty batch of y items"):
        style_panel(model, data("x", 2, 0.0), data("y", 0, 0.0), "x2y")
    with pytest.raises(ValueError, match="at least one row and column"):
        joint_panel(model, 0, 3, seeded(0))
    with pytest.raises(ValueError, match="needs at least 4 items, the batch has 3"):
        draw_panel(model, "x2y", data("x", 3, 0.0), data("y", 3, 0.0), seeded(0), rows=4, cols=2)
    with pytest.raises(ValueError, match="unknown panel kind 'mixed'"):
        draw_panel(model, "mixed", data("x", 3, 0.0), data("y", 3, 0.0), seeded(0))  # type: ignore[arg-type]


def test_draw_panel_kinds_match_the_panels(model: FakeWyner) -> None:
    x, y = data("x", 4, -0.2), data("y", 4, 0.1)
    assert PANEL_KINDS == ("joint", "x2y", "y2x", "style")
    np.testing.assert_array_equal(
        draw_panel(model, "y2x", x, y, seeded(3), rows=2, cols=3), conditional_panel(model, y[:2], "y2x", 3, seeded(3))
    )
    both = draw_panel(model, "style", x, y, seeded(3), rows=2, cols=3)
    first = style_panel(model, x[:2], y[1:], "x2y")
    np.testing.assert_array_equal(both[: first.shape[0], : first.shape[1]], first)


# --- files, seeds, model state -----------------------------------------------------------------


def write_figure(model: BimodalModel, out_dir: Path, seed: int, **kwargs: Any) -> dict[str, Path]:
    x, y = data("x", 5, -0.6), data("y", 5, 0.2)
    return figure_1(model, x, y, out_dir, seeded(seed), **kwargs)


def test_figure_1_writes_three_pngs_that_round_trip(model: FakeWyner, tmp_path: Path) -> None:
    paths = write_figure(model, tmp_path / "figs", 0, rows=3, cols=4)
    assert {name: p.name for name, p in paths.items()} == {
        "joint": "joint.png",
        "conditional": "conditional.png",
        "style": "style.png",
    }
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(FILES), "no temporary files left"
    joint_layout = GridLayout(rows=3, cols=4, cell_h=6, cell_w=4 + PAIR_GAP + 6, line=JOINT_LINE)
    conditional_layout = GridLayout(rows=3, cols=5, cell_h=6, cell_w=6, header_col=True)
    style_layout = GridLayout(rows=4, cols=5, cell_h=6, cell_w=6, header_row=True, header_col=True)
    stacked = {
        "joint": joint_layout.shape,
        "conditional": (2 * conditional_layout.shape[0] + 3 * GAP, conditional_layout.shape[1]),
        "style": (2 * style_layout.shape[0] + 3 * GAP, style_layout.shape[1]),
    }
    for name, path in paths.items():
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size[::-1]) == ("PNG", "RGB", stacked[name]), name
            pixels = np.asarray(image)
        assert (pixels != BACKGROUND).any(), name


def test_save_png_round_trips_exactly(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = save_png(image, tmp_path / "deep" / "a.png")
    with Image.open(path) as read:
        np.testing.assert_array_equal(np.asarray(read), image)
    with pytest.raises(ValueError, match="uint8"):
        save_png(image.astype(np.int64), tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()


def file_bytes(paths: dict[str, Path]) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in paths.items()}


def test_the_same_seed_gives_identical_files_and_another_seed_other_samples(model: FakeWyner, tmp_path: Path) -> None:
    first = file_bytes(write_figure(model, tmp_path / "a", 7, rows=3, cols=4))
    again = file_bytes(write_figure(model, tmp_path / "b", 7, rows=3, cols=4))
    other = file_bytes(write_figure(model, tmp_path / "c", 8, rows=3, cols=4))
    assert first == again
    assert first["joint"] != other["joint"]
    assert first["conditional"] != other["conditional"]
    assert first["style"] == other["style"], "style transfer draws nothing at random in this model"


@pytest.mark.parametrize("training", [True, False])
def test_drawing_runs_in_eval_mode_without_autograd_and_restores_every_mode(
    model: FakeWyner, tmp_path: Path, training: bool
) -> None:
    model.train(training)
    model.frozen.eval()
    write_figure(model, tmp_path, 0, rows=2, cols=2)
    assert model.decode_calls, "the fake model was never used"
    assert set(model.decode_calls) == {(False, False)}, "decoded in training mode or with autograd on"
    assert (model.training, model.frozen.training) == (training, False)
    assert torch.is_grad_enabled()


def test_drawing_leaves_the_global_random_stream_alone(model: FakeWyner, tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    write_figure(model, tmp_path, 0, rows=2, cols=2)
    torch.testing.assert_close(torch.rand(4), expected)


# --- the real model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_model_factory() -> Callable[[int], BimodalModel]:
    """Builds ``variational-wyner`` on small ``vector`` modalities (as tests/plugins/test_variational_wyner.py does)."""
    vector = pytest.importorskip("wynerkit_plugins.modalities.vector")
    host = PluginHost.load(
        [PluginSource.from_object("vector-modality", vector), PluginSource.from_object("variational-wyner", vw_plugin)],
        blocked=(),
    )
    assert not host.errors, [str(e) for e in host.errors]

    def build(noise_dim: int) -> BimodalModel:
        torch.manual_seed(0)
        spec = {
            "latent": {"z": 4, "u": 2, "v": 3},
            "x": {"name": "vector", "dim": 8, "hidden": 16, "features": 16, "decoder_hidden": 8},
            "y": {"name": "vector", "dim": 6, "hidden": 16, "features": 16, "decoder_hidden": 8},
            "noise_dim": noise_dim,
        }
        return check_component(host, "model", "variational-wyner", spec)

    return build


@pytest.mark.parametrize("noise_dim", [0, 2])
def test_figure_1_draws_the_real_model_on_vector_modalities(
    real_model_factory: Callable[[int], BimodalModel], tmp_path: Path, noise_dim: int
) -> None:
    model = real_model_factory(noise_dim)
    assert isinstance(model, nn.Module) and model.training
    g = seeded(0)
    x, y = torch.randn(6, 8, generator=g), torch.randn(6, 6, generator=g)
    torch.manual_seed(5)
    paths = figure_1(model, x, y, tmp_path / "a", seeded(1), rows=3, cols=4)
    assert sorted(p.name for p in paths.values()) == sorted(FILES)
    for path in paths.values():
        with Image.open(path) as image:
            image.load()
            assert image.mode == "RGB" and min(image.size) > 8
    assert model.training
    torch.manual_seed(6)  # a stochastic encoder must not read the global stream as it finds it
    again = figure_1(model, x, y, tmp_path / "b", seeded(1), rows=3, cols=4)
    assert file_bytes(again) == file_bytes(paths), "stochastic encoders must follow the generator too"


def test_fake_model_honours_the_interfaces(model: FakeWyner) -> None:
    assert isinstance(model, BimodalModel)
    assert isinstance(model.x_modality, Modality)
