"""Every test runs with a controlled plugin set: the built-ins only, nothing blocked."""

from __future__ import annotations

import pytest

from wynerkit.plugins import BLOCK_ENV, PluginHost, discover, set_host


@pytest.fixture(scope="session")
def builtin_host() -> PluginHost:
    host = PluginHost.load(discover(builtin_only=True), blocked=())
    assert not host.errors, [str(e) for e in host.errors]
    return host


@pytest.fixture(autouse=True)
def _controlled_plugins(monkeypatch: pytest.MonkeyPatch, builtin_host: PluginHost):
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    set_host(builtin_host)
    yield
    set_host(None)
