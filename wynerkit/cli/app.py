"""The ``wynerkit`` command line (Typer): run, spec, plugins, and commands plugins add.

Usage errors print one line per problem on stderr and exit with code 2, file and I/O errors one
line naming the file (exit 1 or 2), never a traceback: see ``wynerkit.cli.errors``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import torch
import typer

import wynerkit
from wynerkit.cli.data import add_data_commands
from wynerkit.cli.errors import guard_commands, os_error_line, reports_usage_errors, run_guarded
from wynerkit.cli.eval import add_eval_command
from wynerkit.cli.output_files import require_output_file
from wynerkit.cli.sweep import add_sweep_command
from wynerkit.cli.tables import print_table
from wynerkit.data.loading import evenly_spaced, fetch
from wynerkit.errors import UsageError
from wynerkit.evaluation.evaluate import EvaluationFailed
from wynerkit.evaluation.trained_run import Which, open_trained
from wynerkit.figures.panels import COLS, ROWS, PanelKind, draw_panel, drawing, save_png
from wynerkit.plugins import BLOCK_ENV, PluginHost, get_host
from wynerkit.rundir.lock import exclusive_lock
from wynerkit.rundir.paths import RunDir
from wynerkit.runs.create import create_run_dir, removed_if_unstarted
from wynerkit.runs.training_run import train_run
from wynerkit.spec.loading import LoadedSpec, load_spec
from wynerkit.spec.models import build_run_spec_model
from wynerkit.training.distributed import Cluster
from wynerkit.training.divergence import TrainingDiverged

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="Override a spec field, e.g. --set train.epochs=3 (repeatable)."),
]
SpecFile = Annotated[Path, typer.Argument(metavar="FILE", help="A YAML run spec.", show_default=False)]


def warn_plugin_errors(host: PluginHost) -> None:
    for error in host.errors:
        typer.echo(f"wynerkit: warning: {error}", err=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wynerkit {wynerkit.__version__}")
        raise typer.Exit()


def shared_run_dir(cluster: Cluster, create: Callable[[], Path]) -> Path:
    """A new run directory, made by rank 0 and announced to the other ranks of a distributed run."""
    made: Path | None = None
    try:
        if cluster.is_main:
            made = create()
    finally:
        shared = cluster.share_text(str(made) if made is not None else "")  # "" tells the others it failed
    if not shared:
        raise UsageError("run: the first process (rank 0) could not create the run directory; see its error")
    return Path(shared)


def new_run_dir(out: Path, loaded: LoadedSpec, host: PluginHost) -> Path:
    """A fresh run directory under ``out``; a place it cannot be made in is a usage error of ``--out``."""
    try:
        return create_run_dir(out, loaded.spec, loaded.source, host)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create a run directory: {os_error_line(exc)[0]}") from None


def build_app(host: PluginHost) -> typer.Typer:
    """The CLI for one plugin host, including the commands its plugins add."""
    app = typer.Typer(
        name="wynerkit",
        help="Information-theoretic bimodal generative models: train, evaluate and inspect specs.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def root(
        version: Annotated[
            bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
        ] = False,
    ) -> None:
        warn_plugin_errors(host)

    plugins_app = typer.Typer(help="Inspect installed plugins and the components they register.", no_args_is_help=True)
    spec_app = typer.Typer(help="Validate run specs and print their JSON Schema.", no_args_is_help=True)
    app.add_typer(plugins_app, name="plugins")
    app.add_typer(spec_app, name="spec")

    @plugins_app.command("list")
    def plugins_list(
        as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of components.")] = False,
    ) -> None:
        """List every registered component with its kind, plugin and version."""
        rows = [c.describe() for c in host.registry]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        headers = ("kind", "name", "plugin", "version", "summary")
        print_table("wynerkit components", headers, [[row[column] for column in headers] for row in rows])
        if host.blocked:
            typer.echo(f"blocked by {BLOCK_ENV}: {', '.join(host.blocked)}")

    @spec_app.command("validate")
    @reports_usage_errors
    def spec_validate(file: SpecFile, set_: SetOption = None) -> None:
        """Check a spec against the installed plugins; print every problem with its FILE:LINE:COL."""
        load_spec(file, host.registry, set_)
        typer.echo(f"{file}: valid")

    @spec_app.command("schema")
    def spec_schema() -> None:
        """Print the JSON Schema of a run spec, covering every registered component."""
        typer.echo(json.dumps(build_run_spec_model(host.registry).model_json_schema(), indent=2))

    @app.command()
    @reports_usage_errors
    def run(
        file: Annotated[
            Path | None, typer.Argument(metavar="FILE", help="A YAML run spec.", show_default=False)
        ] = None,
        out: Annotated[Path, typer.Option("--out", help="Directory that holds run directories.")] = Path("runs"),
        set_: SetOption = None,
        resume: Annotated[
            Path | None,
            typer.Option("--resume", metavar="RUN_DIR", help="Continue a run from its newest checkpoint."),
        ] = None,
    ) -> None:
        """Train a spec in a new run directory (or resume one): checkpoints, metrics, figures; prints it last."""
        if resume is not None:
            if file is not None or set_:
                raise UsageError(
                    "--resume RUN_DIR continues a run with its own spec.yaml: do not also pass FILE or --set"
                )
            if not RunDir(resume).is_run():
                raise UsageError(f"--resume {resume}: not a run directory (no spec.yaml); pass a directory run created")
            loaded = load_spec(RunDir(resume).spec, host.registry)
            run_dir = resume
        elif file is None:
            raise UsageError("run: pass a spec FILE to start a run, or --resume RUN_DIR to continue one")
        else:
            loaded = load_spec(file, host.registry, set_)
        cluster = Cluster.from_env(loaded.spec.train.device)  # one process unless torchrun started several
        try:
            if resume is None:
                run_dir = shared_run_dir(cluster, lambda: new_run_dir(out, loaded, host))
            lock = exclusive_lock(run_dir) if cluster.is_main else nullcontext()  # rank 0 holds it for all ranks
            try:
                with lock, removed_if_unstarted(run_dir, fresh=resume is None and cluster.is_main):
                    if cluster.is_main:
                        typer.echo(f"run directory: {run_dir}", err=True)
                    train_run(run_dir, loaded.spec, host.registry, resume=resume is not None, cluster=cluster)
            except (TrainingDiverged, EvaluationFailed) as exc:
                typer.echo(f"wynerkit: error: {exc}", err=True)
                raise typer.Exit(1) from None
        finally:
            cluster.close()
        if cluster.is_main:
            typer.echo(str(run_dir))

    @app.command()
    @reports_usage_errors
    def sample(
        run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.", show_default=False)],
        kind: Annotated[PanelKind, typer.Option("--kind", help="Which panel of the paper's Figure 1 to draw.")],
        out: Annotated[Path, typer.Option("--out", metavar="FILE.png", help="Where to write the PNG.")],
        checkpoint: Annotated[
            Which, typer.Option("--checkpoint", help="Draw from the latest or the best checkpoint.")
        ] = "latest",
        seed: Annotated[int, typer.Option("--seed", help="Seed of the prior draws.")] = 0,
        rows: Annotated[int, typer.Option("--rows", min=1, help="Rows (shared z, or inputs).")] = ROWS,
        cols: Annotated[int, typer.Option("--cols", min=1, help="Columns (shared u / v, or styles).")] = COLS,
    ) -> None:
        """Draw joint, conditional (x2y, y2x) or style-transfer samples of a trained run's EMA model."""
        require_output_file(out, "--out")
        parts = open_trained(run_dir, host.registry, checkpoint)
        test = parts.data.split("test")
        needed = {"joint": 0, "style": rows + cols}.get(kind, rows)  # distinct test items: inputs (+ references)
        if needed > len(test):
            raise UsageError(
                f"sample --kind {kind} --rows {rows} --cols {cols}: draws {needed} distinct test items, "
                f"but the test split has {len(test)}; lower --rows or --cols"
            )
        batch = fetch(test, evenly_spaced(test, rows + cols))
        generator = torch.Generator(parts.device).manual_seed(seed)
        with drawing(parts.model, generator):
            picture = draw_panel(parts.model, kind, batch["x"], batch["y"], generator, rows, cols)
        typer.echo(str(save_png(picture, out)))

    add_data_commands(app, host)
    add_sweep_command(app, host)
    add_eval_command(app, host)
    host.add_commands(app)
    guard_commands(app)  # plugins' commands too: every command reports file errors as one line
    return app


def main() -> None:
    """Entry point of the ``wynerkit`` script."""
    run_guarded(lambda: build_app(get_host())())
