"""The plugin host: discovery, duplicates, crashing and exiting plugins, name clashes, blocking, hook validation."""

from __future__ import annotations

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from wynerkit import ComponentParams, hookimpl
from wynerkit.cli.app import build_app
from wynerkit.plugins import BLOCK_ENV, PluginHost, PluginSource, blocking_entry


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
    assert host.manager.get_plugin("unknown:crashy") is None


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


class Interrupt(BaseException):
    """Stands for any BaseException a plugin might raise that is neither Exception nor KeyboardInterrupt."""


class RegistersThenRaises:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    @hookimpl
    def wynerkit_register_models(self, register):
        register("half-done", make_thing)
        raise self.error


def failing_import(error: BaseException) -> PluginSource:
    def load():
        raise error

    return PluginSource("exiter", load)


@pytest.mark.parametrize(
    ("error", "shown"),
    [(SystemExit(3), "SystemExit: 3"), (SystemExit(), "SystemExit"), (Interrupt("x"), "Interrupt: x")],
)
def test_a_plugin_that_exits_at_import_or_registration_is_reported_and_the_host_lives(error, shown):
    sources = [
        failing_import(error),
        source("crashy", RegistersThenRaises(error)),
        source("fine", RegistersDataset("ok")),
    ]
    host = PluginHost.load(sources)
    assert [str(e) for e in host.errors] == [
        f"plugin 'exiter' failed to import: {shown} (skipped; silence this with {BLOCK_ENV}=exiter)",
        f"plugin 'crashy' failed to register its components: {shown} (skipped; silence this with {BLOCK_ENV}=crashy)",
    ]
    assert host.registry.names("model") == [] and host.registry.names("dataset") == ["ok"]


def test_keyboard_interrupt_in_a_plugin_still_stops_the_host():
    with pytest.raises(KeyboardInterrupt):
        PluginHost.load([failing_import(KeyboardInterrupt())])
    with pytest.raises(KeyboardInterrupt):
        PluginHost.load([source("crashy", RegistersThenRaises(KeyboardInterrupt()))])


def test_a_plugin_that_exits_while_adding_commands_is_reported():
    class ExitsAddingCommand:
        @hookimpl
        def wynerkit_register_commands(self, cli):
            raise SystemExit(3)

    host = PluginHost.load([source("quitter", ExitsAddingCommand())])
    result = CliRunner().invoke(build_app(host), ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert "plugin 'quitter' failed to add commands: SystemExit: 3" in result.stderr


def clashing() -> list[PluginSource]:
    """A built-in ``retrieval`` and a third-party entry point of the same name."""
    return [
        PluginSource.from_object("retrieval", RegistersDataset("builtin-thing"), builtin=True),
        PluginSource.from_object("retrieval", RegistersDataset("acme-thing"), distribution="Acme_Wynerkit"),
    ]


def test_an_entry_point_named_like_a_builtin_never_replaces_it():
    builtin, third_party = clashing()
    host = PluginHost.load([builtin, third_party])
    assert host.registry.names("dataset") == ["builtin-thing"]
    assert [(p.name, p.distribution) for p in host.plugins] == [("retrieval", "wynerkit")]
    assert host.manager.get_plugin("wynerkit:retrieval") is not None
    assert [str(e) for e in host.errors] == [
        "plugin 'retrieval' of package 'acme-wynerkit' has the same name as the built-in plugin 'retrieval' of "
        f"package 'wynerkit', which is kept; to use this one instead, set {BLOCK_ENV}=wynerkit:retrieval "
        f"(skipped; silence this with {BLOCK_ENV}=acme-wynerkit:retrieval)"
    ]


@pytest.mark.parametrize(
    ("block", "loaded", "blocked"),
    [
        ({"acme-wynerkit:retrieval"}, ["builtin-thing"], ["acme-wynerkit:retrieval"]),
        ({"wynerkit:retrieval"}, ["acme-thing"], ["wynerkit:retrieval"]),
        ({"retrieval"}, [], ["retrieval", "retrieval"]),
    ],
)
def test_blocking_distribution_colon_name_targets_one_of_two_plugins_of_one_name(block, loaded, blocked):
    host = PluginHost.load(clashing(), blocked=block)
    assert host.registry.names("dataset") == loaded and host.blocked == blocked and not host.errors


@given(
    words=st.lists(st.sampled_from(["acme", "Wynerkit", "PLUGINS", "x2"]), min_size=1, max_size=3),
    separators=st.lists(st.sampled_from(["-", "_", ".", "--", "_-"]), min_size=2, max_size=2),
)
def test_a_block_entry_matches_its_distribution_however_the_name_is_spelled(words, separators):
    """pip treats ``Acme_Wynerkit`` and ``acme-wynerkit`` as one distribution, and so does blocking."""
    installed, written = separators[0].join(words), separators[1].join(words).swapcase()
    plugin = PluginSource.from_object("thing", object(), distribution=installed)
    assert blocking_entry(plugin, {f"{written}:thing"}) == plugin.key
    assert blocking_entry(plugin, {f"{written}x:thing", f"{written}:other"}) is None
