"""The ``reconstruction`` evaluator: mean per-item reconstruction errors on the test split, and a figure.

Each key is the mean, over the test pairs, of the per-item loss of the objective term of the same
name in ``wynerkit_plugins/shared/reconstruction_terms.py`` — the very term objects, so the numbers are what
those terms measure during training: the modality's own ``reconstruction_loss`` (L1 on images, L2
on feature vectors unless the modality's ``loss`` says otherwise). Lower is better.

- ``recon.xy2x`` (``R_xy2x``): x against x(z, u), z = q(z|x,y), u = q(u|z,x);
- ``recon.xy2y`` (``R_xy2y``): y against y(z, v), z = q(z|x,y), v = q(v|z,y);
- ``recon.x2x`` (``R_x2x``): x against x(z, u), z = q(z|x), u = q(u|z,x);
- ``recon.y2y`` (``R_y2y``): y against y(z, v), z = q(z|y), v = q(v|z,y);
- ``recon.x2y`` (``R_x2y``): y against y(z, v), z = q(z|x), v = q(v|z,y);
- ``recon.y2x`` (``R_y2x``): x against x(z, u), z = q(z|y), u = q(u|z,x).

The conditional keys (``x2y``, ``y2x``) still read the target's local code from the target itself:
they measure how well the source's common code stands in for the target's, not sample quality.

It also writes ``figures/reconstruction.png`` (unless ``figure_items`` is 0): for test pairs spread
over the split, one column per pair, the x block above the y block. Each block has four rows: the
data, then its reconstruction from (x, y), from its own side, and from the other side (x block:
x, xy2x, x2x, y2x; y block: y, xy2y, y2y, x2y). Each block is one ``to_grid`` picture, so vector
heatmaps share one colour scale within a block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, NonNegativeInt, PositiveInt
from torch import Tensor

from wynerkit import BuildContext, ComponentParams, EvalContext, hookimpl
from wynerkit.data.loading import as_sample, evenly_spaced, fetch, in_order
from wynerkit.figures.grid import join
from wynerkit.figures.panels import PANEL_GAP, save_png
from wynerkit.hookspecs import Register
from wynerkit.training.step import TrainingStep
from wynerkit_plugins.shared.reconstruction_terms import TERMS, DataReconstruction

FIGURE = "reconstruction.png"
KEYS: dict[str, str] = {
    "recon.xy2x": "R_xy2x",
    "recon.xy2y": "R_xy2y",
    "recon.x2x": "R_x2x",
    "recon.y2y": "R_y2y",
    "recon.x2y": "R_x2y",
    "recon.y2x": "R_y2x",
}
"""Each key and the objective term whose per-item loss it averages."""
FIGURE_ROWS: dict[Literal["x", "y"], tuple[str, ...]] = {
    "x": ("recon.xy2x", "recon.x2x", "recon.y2x"),
    "y": ("recon.xy2y", "recon.y2y", "recon.x2y"),
}
"""The reconstructions under each side's data row in the figure, top to bottom."""


def _data_term(name: str) -> DataReconstruction:
    term = TERMS[name][0]
    if not isinstance(term, DataReconstruction):
        raise TypeError(f"objective term {name} does not reconstruct data")
    return term


TERM_OF: dict[str, DataReconstruction] = {key: _data_term(name) for key, name in KEYS.items()}


class ReconstructionParams(ComponentParams):
    """How many test pairs are scored, in batches of what size, and how many the figure shows."""

    batch_size: Annotated[PositiveInt, Field(description="test pairs per forward pass")] = 256
    max_items: Annotated[
        PositiveInt | None, Field(description="score only the first this many test pairs (None: all)")
    ] = None
    figure_items: Annotated[
        NonNegativeInt, Field(description="test pairs (columns) in figures/reconstruction.png; 0: no figure")
    ] = 8


class ReconstructionEvaluator:
    """Implements ``wynerkit.Evaluator``: the six reconstruction errors of the test split."""

    def __init__(self, params: ReconstructionParams) -> None:
        self.params = params

    def evaluate(self, run: EvalContext) -> dict[str, float]:
        test = run.data.split("test")
        generator = torch.Generator(run.device).manual_seed(run.seed)
        totals: dict[str, Tensor] = {}
        count = 0
        for indices in in_order(test, self.params.batch_size, self.params.max_items):
            step = TrainingStep(run.model, None, as_sample(fetch(test, indices), run.device), generator)
            for key, term in TERM_OF.items():
                total = term.per_item(step).double().sum()
                totals[key] = totals[key] + total if key in totals else total
            count += len(indices)
        if count == 0:
            raise ValueError("the test split is empty: there is nothing to reconstruct")
        if self.params.figure_items:
            draw_figure(run, test, self.params.figure_items, generator)
        return {key: float(total) / count for key, total in totals.items()}


def draw_figure(run: EvalContext, test: Any, items: int, generator: torch.Generator) -> Path:
    """``figures/reconstruction.png`` for ``items`` test pairs spread over the split (see the module doc)."""
    step = TrainingStep(run.model, None, as_sample(fetch(test, evenly_spaced(test, items)), run.device), generator)
    blocks = []
    for side, keys in FIGURE_ROWS.items():
        (data,) = step.batch.require(side)
        modality = run.model.x_modality if side == "x" else run.model.y_modality
        rows = [data, *(TERM_OF[key].reconstruction(step) for key in keys)]
        blocks.append(modality.to_grid(torch.cat(rows).detach().cpu(), nrow=len(data)))
    return save_png(join(blocks, "down", PANEL_GAP), run.figures_dir / FIGURE)


def make_reconstruction(params: ReconstructionParams, context: BuildContext) -> ReconstructionEvaluator:
    """Mean per-item reconstruction errors (recon.xy2x ... recon.y2x) on the test split, and a figure."""
    del context  # nothing here depends on the build: the model, data and seed come with the run
    return ReconstructionEvaluator(params)


@hookimpl
def wynerkit_register_evaluators(register: Register) -> None:
    """Register the evaluator ``reconstruction``."""
    register("reconstruction", make_reconstruction, params=ReconstructionParams)
