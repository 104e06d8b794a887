"""Every test runs with a controlled plugin set (the built-ins, nothing blocked) and a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.data_root import CACHE_ENV
from wynerkit.plugins import BLOCK_ENV, PluginHost, discover, set_host
from wynerkit.runs.create import create_run_dir
from wynerkit.runs.training_run import train_run
from wynerkit.spec.loading import load_spec

TINY_SPEC = Path(__file__).parent / "specs" / "tiny.yaml"


@pytest.fixture(scope="session")
def builtin_host() -> PluginHost:
    host = PluginHost.load(discover(builtin_only=True), blocked=())
    assert not host.errors, [str(e) for e in host.errors]
    return host


@pytest.fixture
def cli(builtin_host: PluginHost):
    """The CLI on the built-in plugins: ``cli("run", spec, ...)`` gives click's result (exit code, output)."""
    app = build_app(builtin_host)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, builtin_host: PluginHost) -> Path:
    """A 10-step run of ``tests/specs/tiny.yaml`` (a few seconds), shared by the tests of one module."""
    loaded = load_spec(TINY_SPEC, builtin_host.registry, ["train.max_steps=10"])
    made = create_run_dir(tmp_path_factory.mktemp("runs"), loaded.spec, loaded.source, builtin_host)
    train_run(made, loaded.spec, builtin_host.registry)
    return made


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _controlled_plugins(monkeypatch: pytest.MonkeyPatch, builtin_host: PluginHost, cache_dir: Path):
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(cache_dir))  # generated data never lands in a shared data root
    set_host(builtin_host)
    yield
    set_host(None)
