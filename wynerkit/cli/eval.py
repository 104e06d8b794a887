"""``wynerkit eval RUN_DIR``: run evaluators on a trained run and merge their metrics into its summary."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from wynerkit.cli.errors import reports_usage_errors
from wynerkit.cli.tables import print_table
from wynerkit.errors import UsageError, WynerkitError
from wynerkit.evaluation.evaluate import EvaluationFailed, default_evaluator_spec, evaluate_run
from wynerkit.evaluation.trained_run import Which
from wynerkit.plugins import PluginHost
from wynerkit.rundir.paths import RunDir


def print_metrics(metrics: Mapping[str, float], title: str) -> None:
    rows = [(key, f"{metrics[key]:.6g}") for key in sorted(metrics)]
    print_table(title, ("metric", "value"), rows, right_aligned=("value",))


def add_eval_command(app: typer.Typer, host: PluginHost) -> None:
    """Add ``wynerkit eval`` to the app (its evaluators come from ``host``'s registry)."""

    @app.command("eval")
    @reports_usage_errors
    def eval_command(
        run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.", show_default=False)],
        evaluator: Annotated[
            list[str] | None,
            typer.Option(
                "--evaluator",
                metavar="NAME",
                help="A registered evaluator, run with default params (repeatable); default: the spec's evaluate list.",
            ),
        ] = None,
        checkpoint: Annotated[
            Which, typer.Option("--checkpoint", help="Evaluate the latest or the best checkpoint's EMA model.")
        ] = "latest",
    ) -> None:
        """Evaluate a trained run's EMA model; merge the metrics into its summary.json and print them."""
        names = evaluator or []
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise UsageError(f"--evaluator {', '.join(repeated)}: given more than once; name each evaluator once")
        specs = [default_evaluator_spec(host.registry, name) for name in names] if names else None
        try:
            metrics = evaluate_run(run_dir, host.registry, specs, checkpoint)
        except EvaluationFailed as exc:
            if exc.metrics:
                print_metrics(exc.metrics, f"{run_dir.name}: {checkpoint} checkpoint (partial)")
            for line in exc.failures.values():
                typer.echo(f"wynerkit: error: {line}", err=True)
            typer.echo(exc.note, err=True)
            raise typer.Exit(1) from None
        except UsageError:
            raise
        except WynerkitError as exc:
            typer.echo(f"wynerkit: error: {exc}", err=True)
            raise typer.Exit(1) from None
        print_metrics(metrics, f"{run_dir.name}: {checkpoint} checkpoint")
        typer.echo(f"merged into {RunDir(run_dir).summary}", err=True)
