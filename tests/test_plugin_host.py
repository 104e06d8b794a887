"""The plugin host: discovery, duplicates, crashing plugins, blocking, hook validation."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from wynerkit import ComponentParams, hookimpl
from wynerkit.cli import build_app
from wynerkit.plugins import BLOCK_ENV, PluginHost, PluginSource


class Width(ComponentParams):
    width: int = 3


def make_thing(params, context):
    """A thing for tests."""
    return ("thing", params.width)


class RegistersDataset:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def wynerkit_register_datasets(self, register):
        register(self.name, make_thing, params=Width)


class RegistersThenCrashes:
    @hookimpl
    def wynerkit_register_models(self, register):
        register("half-done", make_thing)
        raise RuntimeError("boom in register")


def source(name: str, plugin: object) -> PluginSource:
    return PluginSource.from_object(name, plugin, version="1.2.3")


def test_duplicate_component_is_refused_naming_both_plugins():
    host = PluginHost.load([source("first", RegistersDataset("twin")), source("second", RegistersDataset("twin"))])
    assert host.registry.get("dataset", "twin").plugin == "first"
    (error,) = host.errors
    message = str(error)
    assert "'first'" in message and "'second'" in message and "dataset 'twin' is registered twice" in message
    assert [p.name for p in host.plugins] == ["first"]


def test_plugin_that_fails_to_import_is_reported_and_others_still_work():
    def broken():
        raise ImportError("no module named 'missing_dependency'")

    host = PluginHost.load([PluginSource("broken", broken), source("fine", RegistersDataset("ok"))])
    (error,) = host.errors
    assert "plugin 'broken' failed to import: ImportError: no module named 'missing_dependency'" in str(error)
    assert f"{BLOCK_ENV}=broken" in str(error)
    component = host.registry.get("dataset", "ok")
    assert component.factory(component.params(), None) == ("thing", 3)


def test_plugin_that_raises_while_registering_leaves_nothing_behind():
    host = PluginHost.load([source("crashy", RegistersThenCrashes()), source("fine", RegistersDataset("ok"))])
    (error,) = host.errors
    assert "plugin 'crashy' failed to register its components: RuntimeError: boom in register" in str(error)
    assert host.registry.names("model") == []
    assert host.registry.names("dataset") == ["ok"]
    assert host.manager.get_plugin("crashy") is None


def test_misspelled_hook_is_an_error_not_a_silent_no_op():
    class Misspelled:
        @hookimpl
        def wynerkit_register_modelz(self, register):
            register("never", make_thing)

    host = PluginHost.load([source("typo", Misspelled()), source("fine", RegistersDataset("ok"))])
    (error,) = host.errors
    assert "plugin 'typo' is not a valid plugin" in str(error) and "wynerkit_register_modelz" in str(error)
    assert host.registry.names("dataset") == ["ok"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (dict, "params must be a pydantic model class"),
        (type("Loose", (ComponentParams,), {"model_config": {"extra": "allow"}}), "must forbid extra fields"),
        (type("Named", (ComponentParams,), {"__annotations__": {"name": str}, "name": "x"}), "must not define 'name'"),
    ],
)
def test_register_rejects_bad_params_models(params, expected):
    class Plugin:
        @hookimpl
        def wynerkit_register_evaluators(self, register):
            register("bad", make_thing, params=params)

    host = PluginHost.load([source("p", Plugin())])
    (error,) = host.errors
    assert expected in str(error)


def test_register_rejects_bad_names():
    class Plugin:
        @hookimpl
        def wynerkit_register_evaluators(self, register):
            register("has space", make_thing)

    (error,) = PluginHost.load([source("p", Plugin())]).errors
    assert "evaluator 'has space': a component name must match" in str(error)


def test_blocking_by_argument_and_by_environment(monkeypatch):
    sources = [source("a", RegistersDataset("from-a")), source("b", RegistersDataset("from-b"))]
    host = PluginHost.load(sources, blocked={"b"})
    assert host.registry.names("dataset") == ["from-a"] and host.blocked == ["b"]
    monkeypatch.setenv(BLOCK_ENV, " a , b ")
    host = PluginHost.load(sources)
    assert host.registry.names("dataset") == [] and host.blocked == ["a", "b"] and not host.errors


def test_summary_defaults_to_the_factory_docstring_and_version_to_the_source():
    host = PluginHost.load([source("p", RegistersDataset("d"))])
    assert host.registry.get("dataset", "d").describe() == {
        "name": "d",
        "kind": "dataset",
        "plugin": "p",
        "version": "1.2.3",
        "summary": "A thing for tests.",
    }


def test_builtins_load_through_the_entry_point_group(builtin_host):
    assert builtin_host.plugins and all(p.builtin for p in builtin_host.plugins)
    assert {c.plugin for c in builtin_host.registry} == {p.name for p in builtin_host.plugins}
    assert "variational-wyner" in builtin_host.registry.names("model")
    assert "vector" in builtin_host.registry.names("modality")


def test_plugins_can_add_cli_commands_and_a_crashing_one_is_reported():
    class AddsCommand:
        @hookimpl
        def wynerkit_register_commands(self, cli: typer.Typer):
            @cli.command("hello")
            def hello(who: str = "world") -> None:
                typer.echo(f"hello {who}")

    class CrashesAddingCommand:
        @hookimpl
        def wynerkit_register_commands(self, cli):
            raise ValueError("no commands today")

    host = PluginHost.load([source("greeter", AddsCommand()), source("grumpy", CrashesAddingCommand())])
    result = CliRunner().invoke(build_app(host), ["hello", "--who", "wyner"])
    assert result.exit_code == 0, result.output
    assert "hello wyner" in result.stdout
    assert "plugin 'grumpy' failed to add commands: ValueError: no commands today" in result.stderr
