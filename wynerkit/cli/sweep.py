"""``wynerkit sweep SPEC --grid KEY=V1,V2 [--baseline OVERLAY.yaml] ...``: a grid of runs and its reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from wynerkit.cli.errors import reports_usage_errors
from wynerkit.errors import UsageError, WynerkitError
from wynerkit.plugins import PluginHost
from wynerkit.rundir.lock import exclusive_lock
from wynerkit.sweeps.baselines import read_baselines
from wynerkit.sweeps.cell_dirs import check_cell_dirs
from wynerkit.sweeps.grid import parse_grid
from wynerkit.sweeps.plan import plan_sweep
from wynerkit.sweeps.report import write_reports
from wynerkit.sweeps.run import run_sweep


def parse_metrics(text: str | None) -> list[str] | None:
    """``--metrics a,b`` -> ``["a", "b"]``; None when not given."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--metrics {text}: no metric names; e.g. --metrics valid.loss,coherence.x2y")
    return names


def _collect(*steps: Callable[[], Any]) -> list[Any]:
    """Run each parsing step; raise one UsageError with every step's problems."""
    results, problems = [], []
    for step in steps:
        try:
            results.append(step())
        except UsageError as exc:
            problems += exc.problems
    if problems:
        raise UsageError(problems)
    return results


def add_sweep_command(app: typer.Typer, host: PluginHost) -> None:
    """Add ``wynerkit sweep`` to the app (specs are validated against ``host``'s registry)."""

    @app.command("sweep")
    @reports_usage_errors
    def sweep(
        spec: Annotated[Path, typer.Argument(metavar="SPEC", help="A YAML run spec.", show_default=False)],
        grid: Annotated[
            list[str] | None,
            typer.Option(
                "--grid",
                metavar="KEY=V1,V2,...",
                help="A grid axis: a dotted spec field and its values, read as YAML (repeatable; "
                "e.g. --grid objective.lambda_ci=0,0.5,1 --grid seed=0,1).",
            ),
        ] = None,
        baseline: Annotated[
            list[Path] | None,
            typer.Option(
                "--baseline",
                metavar="OVERLAY.yaml",
                help="A YAML mapping of dotted keys to values (as --set); runs once per seed, labelled by "
                "its file stem (repeatable).",
            ),
        ] = None,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", metavar="KEY=VALUE", help="Override a field in every cell (repeatable)."),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option("--out", metavar="DIR", help="The sweep directory (default: sweeps/<name>-<hash>)."),
        ] = None,
        metrics: Annotated[
            str | None,
            typer.Option(
                "--metrics",
                metavar="M1,M2,...",
                help="Metrics of sweep.md and sweep.png (default: every metric of the model found).",
            ),
        ] = None,
    ) -> None:
        """Train one run per grid cell (and per baseline and seed), resumably; write sweep.csv, .md and .png."""
        axes, baselines, wanted = _collect(
            lambda: parse_grid(grid or []),
            lambda: read_baselines(baseline or []),
            lambda: parse_metrics(metrics),
        )
        plan = plan_sweep(spec, host.registry, axes, baselines, set_ or [])
        sweep_dir = out if out is not None else plan.default_dir()

        def log(line: str) -> None:
            typer.echo(line, err=True)

        check_cell_dirs(plan, sweep_dir)  # refuse a file at --out or cells of another spec before creating anything
        sweep_dir.mkdir(parents=True, exist_ok=True)
        try:
            with exclusive_lock(sweep_dir):  # one sweep per directory; run_sweep checks the cells again under it
                outcome = run_sweep(plan, sweep_dir, host, log)
                written = write_reports(sweep_dir, wanted, log)
        except UsageError:
            raise
        except WynerkitError as exc:
            log(f"wynerkit: error: {exc}")
            raise typer.Exit(1) from None
        log(f"wrote {', '.join(p.name for p in written)}")
        for label in outcome.diverged:
            log(f"wynerkit: error: cell {label} diverged")
        for label in outcome.failed_evaluations:
            log(f"wynerkit: error: cell {label}: evaluators failed (rerun them with `wynerkit eval CELL_DIR`)")
        typer.echo(str(sweep_dir))
        if not outcome.ok:
            raise typer.Exit(1)
