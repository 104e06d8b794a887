"""The command hook receives the plugin host the CLI was built from, never the process-wide one."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from wynerkit import hookimpl
from wynerkit.cli.app import build_app
from wynerkit.plugins import PluginHost, PluginSource, set_host
from wynerkit.runs.create import create_run_dir
from wynerkit.runs.training_run import train_run
from wynerkit.spec.loading import load_spec

TINY = Path(__file__).parent / "specs" / "tiny.yaml"


class NamesItsHost:
    """Implements the hook with ``host``: its command prints what that host has loaded."""

    @hookimpl
    def wynerkit_register_commands(self, cli: typer.Typer, host: PluginHost) -> None:
        @cli.command("which-host")
        def which_host() -> None:
            typer.echo(",".join(p.name for p in host.plugins))


class OldSignature:
    """A plugin written before the hook had ``host``: it still adds its command."""

    @hookimpl
    def wynerkit_register_commands(self, cli: typer.Typer) -> None:
        @cli.command("old-hello")
        def old_hello() -> None:
            typer.echo("hello from the old signature")


def test_a_command_sees_the_host_it_was_built_with_and_old_signatures_still_work():
    built = PluginHost.load(
        [PluginSource.from_object("names-host", NamesItsHost()), PluginSource.from_object("old", OldSignature())]
    )
    set_host(PluginHost())  # a different process-wide host: the command must not read it
    app = build_app(built)
    runner = CliRunner()
    result = runner.invoke(app, ["which-host"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "names-host,old"
    result = runner.invoke(app, ["old-hello"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "hello from the old signature"


@pytest.fixture
def tiny_run(tmp_path: Path, builtin_host: PluginHost) -> Path:
    loaded = load_spec(TINY, builtin_host.registry, ["train.max_steps=2"])
    made = create_run_dir(tmp_path, loaded.spec, loaded.source, builtin_host)
    train_run(made, loaded.spec, builtin_host.registry)
    return made


def test_retrieve_opens_the_run_with_the_host_it_was_built_with(tiny_run, builtin_host):
    set_host(PluginHost())  # empty: a retrieve that fell back to it would not know the run's model
    result = CliRunner().invoke(build_app(builtin_host), ["retrieve", str(tiny_run), "--test", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
