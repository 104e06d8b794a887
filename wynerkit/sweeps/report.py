"""A sweep's results: ``sweep.csv`` (one row per cell), ``sweep.md`` and ``sweep.png``.

Everything is read back from the sweep directory (``sweep.json`` and each cell's ``summary.json``),
so the reports can be redrawn at any time. ``sweep.md`` and ``sweep.png`` group the cells that differ
only in their seed: each entry is the mean and sample standard deviation (n - 1) over the group's
finished cells. ``sweep.png`` follows the paper's Figure 2: one panel per metric against the grid's
numeric axis, one line per combination of the other axes, baselines as dashed horizontal lines.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wynerkit.atomic import write_bytes_atomic, write_text_atomic
from wynerkit.errors import WynerkitError
from wynerkit.evaluation.evaluate import read_summary
from wynerkit.sweeps.grid import SEED
from wynerkit.sweeps.manifest import read_manifest
from wynerkit.sweeps.values import value_text

CSV, MARKDOWN, PNG = "sweep.csv", "sweep.md", "sweep.png"
RUN_FACTS = frozenset({"planned_steps", "steps_per_epoch", "resumed_from_step", "steps", "epochs", "seconds"})
"""Numbers of a summary that describe the run rather than measure the model."""
NOT_METRICS = frozenset({"seed", "data", "evaluated", "figures"})
"""Summary entries never reported as metrics: the seed has its own column; the rest is provenance."""
PANEL_INCHES = (3.2, 2.4)
DPI = 80


class PlotUnavailable(WynerkitError):
    """``sweep.png`` cannot be drawn (matplotlib is missing)."""


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """Every finite number of a summary, nested entries flattened with dots (``final.loss.generator``)."""
    found: dict[str, float] = {}

    def walk(prefix: str, items: Iterable[tuple[str, Any]]) -> None:
        for key, value in items:
            if isinstance(value, Mapping):
                walk(f"{prefix}{key}.", value.items())
            elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                found[f"{prefix}{key}"] = float(value)

    walk("", ((k, v) for k, v in summary.items() if k not in NOT_METRICS))
    return found


def is_headline(metric: str) -> bool:
    """A measurement of the model (``valid.loss``, ``coherence.x2y``), not a training log or a run fact."""
    return metric not in RUN_FACTS and not metric.startswith(("final.", "best."))


@dataclass(frozen=True)
class Row:
    """One cell and the metrics of its ``summary.json``."""

    cell: str
    assignments: dict[str, Any]
    baseline: str | None
    model: str
    seed: int
    status: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class Group:
    """Cells that differ only in their seed: one row of ``sweep.md``, one point (or dashed line) of the plot."""

    assignments: dict[str, Any]
    baseline: str | None
    rows: list[Row]

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.rows if r.status == "finished" and metric in r.metrics]

    def stats(self, metric: str) -> tuple[float, float] | None:
        """(mean, sample std) over the finished cells that report ``metric``; std is 0 for one cell."""
        values = self.values(metric)
        if not values:
            return None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    def cell_text(self, metric: str) -> str:
        values = self.values(metric)
        if not values:
            return "—"
        mean, std = self.stats(metric) or (math.nan, math.nan)
        return f"{mean:.4g} ± {std:.2g}" if len(values) > 1 else f"{mean:.4g}"

    @property
    def models(self) -> str:
        return ", ".join(dict.fromkeys(r.model for r in self.rows))


@dataclass(frozen=True)
class SweepResults:
    name: str
    spec: str
    axes: list[tuple[str, list[Any]]]
    rows: list[Row]

    @property
    def varied(self) -> list[str]:
        """The grid's keys other than ``seed``."""
        return [key for key, _ in self.axes if key != SEED]

    @property
    def metrics(self) -> list[str]:
        """Every metric some cell reports: the model's measurements first, then training logs and run facts."""
        found = {m for row in self.rows for m in row.metrics}
        return sorted(found, key=lambda m: (not is_headline(m), m))

    @property
    def headline(self) -> list[str]:
        return [m for m in self.metrics if is_headline(m)]

    def groups(self) -> list[Group]:
        """Rows grouped by everything but the seed, in the order of the sweep's cells."""
        grouped: dict[tuple[str | None, str], Group] = {}
        for row in self.rows:
            kept = {k: v for k, v in row.assignments.items() if k != SEED}
            key = (row.baseline, value_text(kept))
            grouped.setdefault(key, Group(kept, row.baseline, [])).rows.append(row)
        return list(grouped.values())


def load_results(sweep_dir: Path) -> SweepResults:
    manifest = read_manifest(sweep_dir)
    rows = []
    for cell in manifest["cells"]:
        summary = read_summary(sweep_dir / cell["dir"])
        rows.append(
            Row(
                cell=cell["name"],
                assignments=cell["assignments"],
                baseline=cell["baseline"],
                model=cell["model"],
                seed=cell["seed"],
                status=cell["status"],
                metrics=summary_metrics(summary),
            )
        )
    axes = [(axis["key"], axis["values"]) for axis in manifest["grid"]]
    return SweepResults(name=manifest["name"], spec=manifest["spec"], axes=axes, rows=rows)


# -- sweep.csv --------------------------------------------------------------------------------------


def csv_text(results: SweepResults) -> str:
    """One row per cell: its axis values, baseline, model, seed, status, then every metric found."""
    metrics = results.metrics
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["cell", *results.varied, "baseline", "model", "seed", "status", *metrics])
    for row in results.rows:
        axis_values = [value_text(row.assignments[k]) if k in row.assignments else "" for k in results.varied]
        numbers = [repr(row.metrics[m]) if m in row.metrics else "" for m in metrics]
        writer.writerow([row.cell, *axis_values, row.baseline or "", row.model, row.seed, row.status, *numbers])
    return buffer.getvalue()


# -- sweep.md ---------------------------------------------------------------------------------------


def markdown_text(results: SweepResults, metrics: Sequence[str]) -> str:
    """A table with one row per group of cells that differ only in their seed."""
    seeds = next((len(values) for key, values in results.axes if key == SEED), 1)
    header = [*results.varied, "baseline", "model", "finished", *metrics]
    lines = [
        f"# Sweep {results.name}",
        "",
        f"Spec `{results.spec}`, {len(results.rows)} cells. "
        + (
            f"Each entry is the mean ± sample standard deviation over the finished seeds (of {seeds})."
            if seeds > 1
            else "Each entry is one run's value."
        ),
        "",
        _md_row(header),
        _md_row(["---"] * len(header)),
    ]
    for group in results.groups():
        finished = sum(r.status == "finished" for r in group.rows)
        axis_values = [value_text(group.assignments[k]) if k in group.assignments else "" for k in results.varied]
        cells = [*axis_values, group.baseline or "", group.models, f"{finished}/{len(group.rows)}"]
        lines.append(_md_row([*cells, *(group.cell_text(m) for m in metrics)]))
    return "\n".join(lines) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


# -- sweep.png --------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def x_axis(results: SweepResults) -> tuple[str, list[Any]] | None:
    """The axis plotted along x: the first numeric non-seed axis, else the first non-seed axis."""
    candidates = [(key, values) for key, values in results.axes if key != SEED]
    numeric = [axis for axis in candidates if all(_is_number(v) for v in axis[1])]
    return (numeric or candidates or [None])[0]


def png_bytes(results: SweepResults, metrics: Sequence[str]) -> bytes:
    """Figure 2 of the paper for a sweep: a panel per metric, x the numeric axis, mean ± std over seeds."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailable(f"{PNG} needs matplotlib (pip install matplotlib): {exc}") from None
    axis = x_axis(results)
    key, values = axis if axis else ("", [None])
    numeric = axis is not None and all(_is_number(v) for v in values)
    position = {value_text(v): (float(v) if numeric else float(i)) for i, v in enumerate(values)}
    groups = results.groups()
    lines: dict[str, list[Group]] = {}
    for group in (g for g in groups if g.baseline is None):
        rest = {k: v for k, v in group.assignments.items() if k != key}
        lines.setdefault(" ".join(f"{k}={value_text(v)}" for k, v in rest.items()), []).append(group)
    if "" in lines:  # no other axes: one line, named by its model
        models = {r.model for g in lines[""] for r in g.rows}
        lines = {models.pop() if len(models) == 1 else results.name: lines[""]}
    baselines = [g for g in groups if g.baseline is not None]

    columns = min(3, max(len(metrics), 1))
    rows = max(math.ceil(len(metrics) / columns), 1)
    figure = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 0.4), layout="constrained")
    canvas = FigureCanvasAgg(figure)
    panels = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, metric in zip(panels, metrics, strict=False):
        drawn = False
        for i, (label, members) in enumerate(lines.items()):
            points = sorted(
                (position[value_text(g.assignments.get(key))], *stats)
                for g in members
                if (stats := g.stats(metric)) is not None
            )
            if points:
                xs, means, stds = zip(*points, strict=True)
                style = {"marker": "o", "ms": 4, "capsize": 3, "lw": 1.2 if numeric else 0, "elinewidth": 1.2}
                ax.errorbar(xs, means, yerr=stds, color=f"C{i}", label=label, **style)
                drawn = True
        for j, group in enumerate(baselines, len(lines)):
            stats = group.stats(metric)
            if stats is None:
                continue
            mean, std = stats
            ax.axhline(mean, ls="--", lw=1.2, color=f"C{j}", label=group.baseline)
            if std > 0:
                ax.axhspan(mean - std, mean + std, color=f"C{j}", alpha=0.1, lw=0)
            drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "no finished cell\nreports it", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(key, fontsize=8)
        ax.tick_params(labelsize=7)
        if axis is None:
            ax.set_xticks([])
        elif not numeric:
            ax.set_xticks(list(position.values()), [value_text(v) for v in values], rotation=15, ha="right")
    for ax in panels[len(metrics) :]:
        ax.set_visible(False)
    found: dict[str, Any] = {}
    for ax in panels:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(label, handle)
    order = [*lines, *(g.baseline for g in baselines)]
    handles = {label: found[label] for label in order if label in found}
    if handles:
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=_legend_columns(list(handles), figure.get_figwidth()),
            fontsize=8,
            frameon=False,
        )
    buffer = io.BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def _legend_columns(labels: Sequence[str], width_inches: float) -> int:
    """As many legend columns as fit across the figure (about 0.06 in per character at 8 pt)."""
    entry = 0.6 + 0.06 * max(len(label) for label in labels)
    return max(1, min(len(labels), int(width_inches / entry)))


# -- all three --------------------------------------------------------------------------------------


def write_reports(
    sweep_dir: Path, metrics: Sequence[str] | None = None, log: Callable[[str], None] = print
) -> list[Path]:
    """Write sweep.csv, sweep.md and sweep.png (the latter two for ``metrics``, default: the headline ones)."""
    results = load_results(sweep_dir)
    chosen = list(metrics) if metrics else results.headline
    for metric in chosen:
        if metric not in results.metrics:
            found = ", ".join(results.headline) or "none"
            log(f"wynerkit: warning: --metrics {metric}: no cell's summary.json has it (found: {found})")
    written = [sweep_dir / CSV, sweep_dir / MARKDOWN]
    write_text_atomic(written[0], csv_text(results))
    write_text_atomic(written[1], markdown_text(results, chosen))
    if not chosen:
        log(f"wynerkit: warning: no metrics to plot (no finished cell reports any); {PNG} not written")
        return written
    try:
        write_bytes_atomic(sweep_dir / PNG, png_bytes(results, chosen))
    except PlotUnavailable as exc:
        log(f"wynerkit: warning: {exc}; {CSV} and {MARKDOWN} were written")
        return written
    return [*written, sweep_dir / PNG]
