"""The three panels of the paper's Figure 1 as pictures: joint, conditional, and style-transfer samples.

The panels make the model's split of information visible: the common code z is shared along each
row and the local codes u / v along each column, so a good model shows rows that agree on content
(digit class) and columns that agree on style. See ``docs/figures.md`` for how to read them.

Everything here is a pure function of the model, the data and a ``torch.Generator``: the same seed
gives byte-identical pictures. Panels are drawn in eval mode without autograd, and the global RNG
(which encoders with noise inputs read) is seeded from the generator and restored afterwards, so
drawing a figure mid-training changes nothing in the training run.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from wynerkit.atomic import write_bytes_atomic
from wynerkit.figures.grid import GAP, Cell, check_picture, join, tile
from wynerkit.interfaces import BimodalModel, Modality

Side = Literal["x", "y"]
Direction = Literal["x2y", "y2x"]
PanelKind = Literal["joint", "x2y", "y2x", "style"]
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)
PANEL_KINDS: tuple[PanelKind, ...] = get_args(PanelKind)
"""The kinds ``wynerkit sample --kind`` draws, one panel (or pair of panels, for style) each."""

ROWS = 5
COLS = 8
PAIR_GAP = 1
"""Pixels between x and y inside one joint-panel cell."""
JOINT_LINE = 3
"""Pixels between joint-panel cells: wider than ``PAIR_GAP``, so that pairs read as pairs."""
PANEL_GAP = 3 * GAP
"""Pixels between the x2y and y2x panels when one picture holds both."""

_ROUTES: Mapping[Direction, tuple[Side, Side]] = {"x2y": ("x", "y"), "y2x": ("y", "x")}
_LOCAL: Mapping[Side, Literal["u", "v"]] = {"x": "u", "y": "v"}


# --- the model, one side at a time -----------------------------------------------------------


def _modality(model: BimodalModel, side: Side) -> Modality:
    return model.x_modality if side == "x" else model.y_modality


def _encode_local(model: BimodalModel, side: Side, z: Tensor, data: Tensor) -> Tensor:
    """The style of ``data`` given its common code: q(u|z,x) for x, q(v|z,y) for y."""
    return model.encode_u(z, data) if side == "x" else model.encode_v(z, data)


def _decode(model: BimodalModel, side: Side, z: Tensor, local: Tensor) -> Tensor:
    """x(z,u) or y(z,v): only ``side``'s decoder runs."""
    (output,) = model.decode(z, **{_LOCAL[side]: local}).require(side)
    return output


def _placement(model: BimodalModel) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of the model's weights (CPU float32 for a model without any)."""
    for parameter in model.parameters():
        return parameter.device, parameter.dtype
    return torch.device("cpu"), torch.float32


def _on_model(model: BimodalModel, side: Side, data: Tensor, what: str) -> Tensor:
    """``data`` checked against ``side``'s modality and moved to the model's device and dtype."""
    shape = tuple(_modality(model, side).shape)
    if data.ndim != len(shape) + 1 or tuple(data.shape[1:]) != shape or data.shape[0] == 0:
        raise ValueError(
            f"{what} must be a non-empty batch of {side} items [B, {', '.join(map(str, shape))}], "
            f"got {list(data.shape)}"
        )
    device, dtype = _placement(model)
    return data.to(device=device, dtype=dtype)


def _prior(model: BimodalModel, name: Literal["z", "u", "v"], n: int, generator: torch.Generator) -> Tensor:
    """n draws from N(0, I), made on the generator's device (same numbers on CPU and GPU models)."""
    device, dtype = _placement(model)
    draw = torch.randn(n, model.latent[name], generator=generator, device=generator.device)
    return draw.to(device=device, dtype=dtype)


def _crossed(row_values: Tensor, col_values: Tensor) -> tuple[Tensor, Tensor]:
    """Both batches expanded to ``rows * cols`` items in row-major order: item (r, c) gets row r's and column c's."""
    rows, cols = row_values.shape[0], col_values.shape[0]
    return row_values.repeat_interleave(cols, dim=0), col_values.repeat(rows, *([1] * (col_values.ndim - 1)))


# --- pictures ------------------------------------------------------------------------------


def item_pictures(modality: Modality, batch: Tensor) -> list[np.ndarray]:
    """One picture per item, each drawn on its own by the modality (on CPU)."""
    items = batch.detach().cpu()
    return [
        check_picture(modality.to_grid(items[i : i + 1], nrow=1), "Modality.to_grid output") for i in range(len(items))
    ]


def _rows_of(cells: Sequence[Cell], cols: int) -> list[list[Cell]]:
    return [list(cells[start : start + cols]) for start in range(0, len(cells), cols)]


def _check_counts(**counts: int) -> None:
    bad = {name: n for name, n in counts.items() if n < 1}
    if bad:
        raise ValueError(f"a panel needs at least one row and column, got {bad}")


# --- eval mode, no autograd, seeded RNG ----------------------------------------------------


@contextmanager
def _eval_mode(model: BimodalModel) -> Iterator[None]:
    """Eval mode for the block, then every submodule's own previous mode (frozen parts stay frozen)."""
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


@contextmanager
def _rng_from(generator: torch.Generator | None, device: torch.device) -> Iterator[None]:
    """The global RNG (CPU and the model's GPU) seeded from ``generator`` for the block, then restored.

    Encoders with noise inputs draw from the global RNG; seeding it from the generator keeps the
    pictures a function of the seed, and restoring it leaves a training run's random stream as it was.
    """
    if generator is None:
        yield
        return
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    on_cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if on_cuda else [], device_type="cuda"):
        torch.random.default_generator.manual_seed(seed)
        if on_cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


@contextmanager
def drawing(model: BimodalModel, generator: torch.Generator | None = None) -> Iterator[None]:
    """What every panel runs under: no autograd, eval mode (restored after), RNG seeded from ``generator``."""
    with torch.no_grad(), _eval_mode(model), _rng_from(generator, _placement(model)[0]):
        yield


# --- the panels ----------------------------------------------------------------------------


def joint_panel(model: BimodalModel, rows: int, cols: int, generator: torch.Generator) -> np.ndarray:
    """Figure 1(a): cell (r, c) shows the pair x(z_r, u_c) | y(z_r, v_c); z from the prior per row, u, v per column.

    A row shares the common code (content), a column the local codes (style).
    """
    _check_counts(rows=rows, cols=cols)
    with drawing(model, generator):
        z = _prior(model, "z", rows, generator)
        u = _prior(model, "u", cols, generator)
        v = _prior(model, "v", cols, generator)
        z_cells, u_cells = _crossed(z, u)
        _, v_cells = _crossed(z, v)
        x, y = model.decode(z_cells, u_cells, v_cells).require("x", "y")
    pairs = zip(item_pictures(model.x_modality, x), item_pictures(model.y_modality, y), strict=True)
    return tile(_rows_of([join(pair, "across", PAIR_GAP) for pair in pairs], cols), line=JOINT_LINE)


def _transferred(model: BimodalModel, direction: Direction, inputs: Tensor, styles: Tensor) -> Tensor:
    """Target items decoded from z(input_r) and style_c, row-major: the body of a conditional panel."""
    source, target = _ROUTES[direction]
    z = model.encode_z(**{source: inputs})
    z_cells, style_cells = _crossed(z, styles)
    return _decode(model, target, z_cells, style_cells)


def _conditioned_rows(model: BimodalModel, direction: Direction, inputs: Tensor, outputs: Tensor) -> list[list[Cell]]:
    """Row r: the input r, then the outputs generated from it."""
    source, target = _ROUTES[direction]
    cols = outputs.shape[0] // inputs.shape[0]
    body = _rows_of(item_pictures(_modality(model, target), outputs), cols)
    return [[first, *row] for first, row in zip(item_pictures(_modality(model, source), inputs), body, strict=True)]


def conditional_panel(
    model: BimodalModel, inputs: Tensor, direction: Direction, cols: int, generator: torch.Generator
) -> np.ndarray:
    """Figure 1(b): row r = input r (set apart), then target(z(input_r), style_c); style_c from the prior per column.

    The style is drawn once per column and decoded with ``decode`` (not ``x_to_y``, which draws a
    fresh one per item), so a column really shares it across rows.
    """
    source, target = _ROUTES[direction]
    _check_counts(cols=cols)
    with drawing(model, generator):
        data = _on_model(model, source, inputs, "inputs")
        styles = _prior(model, _LOCAL[target], cols, generator)
        outputs = _transferred(model, direction, data, styles)
    return tile(_conditioned_rows(model, direction, inputs, outputs), header_col=True)


def style_panel(
    model: BimodalModel,
    inputs: Tensor,
    references: Tensor,
    direction: Direction,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Figure 1(c): top row = references; row r = input r, then target(z(input_r), style of reference c).

    A reference's style is its local code given its own common code, e.g. v_c = q(v | q(z|y_c), y_c).
    ``generator`` matters only for encoders with noise inputs.
    """
    source, target = _ROUTES[direction]
    with drawing(model, generator):
        data = _on_model(model, source, inputs, "inputs")
        refs = _on_model(model, target, references, "references")
        styles = _encode_local(model, target, model.encode_z(**{target: refs}), refs)
        outputs = _transferred(model, direction, data, styles)
    top: list[Cell] = [None, *item_pictures(_modality(model, target), references)]
    return tile([top, *_conditioned_rows(model, direction, inputs, outputs)], header_row=True, header_col=True)


# --- from a test batch to files --------------------------------------------------------------


def _take(batch: Tensor, n: int, end: Literal["first", "last"], what: str) -> Tensor:
    if len(batch) < n:
        raise ValueError(f"{what} needs at least {n} items, the batch has {len(batch)}")
    return batch[:n] if end == "first" else batch[len(batch) - n :]


def draw_panel(
    model: BimodalModel,
    kind: PanelKind,
    batch_x: Tensor,
    batch_y: Tensor,
    generator: torch.Generator,
    rows: int = ROWS,
    cols: int = COLS,
) -> np.ndarray:
    """One panel of ``kind`` from a batch of paired test data (what ``wynerkit sample --kind`` draws).

    Conditional panels take the first ``rows`` items of the source batch as inputs; style panels
    take the last ``cols`` items of the target batch as references. ``style`` stacks both directions.
    """
    batches: Mapping[Side, Tensor] = {"x": batch_x, "y": batch_y}
    if kind == "joint":
        return joint_panel(model, rows, cols, generator)
    if kind == "style":
        panels = []
        for direction in DIRECTIONS:
            source, target = _ROUTES[direction]
            inputs = _take(batches[source], rows, "first", f"the {direction} style panel's {source} batch")
            references = _take(batches[target], cols, "last", f"the {direction} style panel's {target} batch")
            panels.append(style_panel(model, inputs, references, direction, generator))
        return join(panels, "down", PANEL_GAP)
    if kind in _ROUTES:
        source = _ROUTES[kind][0]
        inputs = _take(batches[source], rows, "first", f"the {kind} panel's {source} batch")
        return conditional_panel(model, inputs, kind, cols, generator)
    raise ValueError(f"unknown panel kind {kind!r}; choose one of {list(PANEL_KINDS)}")


def save_png(image: np.ndarray, path: Path | str) -> Path:
    """Write ``uint8 [H, W, 3]`` as an RGB PNG atomically: a reader never sees half a picture."""
    picture = np.ascontiguousarray(check_picture(image, "a PNG image"))
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    write_bytes_atomic(Path(path), buffer.getvalue())
    return Path(path)


def figure_1(
    model: BimodalModel,
    test_batch_x: Tensor,
    test_batch_y: Tensor,
    out_dir: Path,
    generator: torch.Generator,
    rows: int = ROWS,
    cols: int = COLS,
) -> dict[str, Path]:
    """Write the paper's Figure 1 into ``out_dir``: ``joint.png``, ``conditional.png``, ``style.png``.

    ``conditional.png`` and ``style.png`` hold the x2y panel above the y2x panel. The batches need
    at least ``max(rows, cols)`` paired test items.
    """
    with drawing(model, generator):
        pictures = {
            "joint": draw_panel(model, "joint", test_batch_x, test_batch_y, generator, rows, cols),
            "conditional": join(
                [draw_panel(model, d, test_batch_x, test_batch_y, generator, rows, cols) for d in DIRECTIONS],
                "down",
                PANEL_GAP,
            ),
            "style": draw_panel(model, "style", test_batch_x, test_batch_y, generator, rows, cols),
        }
    return {name: save_png(picture, Path(out_dir) / f"{name}.png") for name, picture in pictures.items()}


__all__ = [
    "COLS",
    "DIRECTIONS",
    "JOINT_LINE",
    "PAIR_GAP",
    "PANEL_KINDS",
    "ROWS",
    "Direction",
    "PanelKind",
    "conditional_panel",
    "draw_panel",
    "drawing",
    "figure_1",
    "joint_panel",
    "save_png",
    "style_panel",
]
