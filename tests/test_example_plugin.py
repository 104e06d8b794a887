"""The example third-party plugin works end to end once installed, exactly as a user would see it.

The plugin is built and installed offline into a temporary directory that is put on PYTHONPATH
of subprocesses, so the test exercises real entry-point discovery (a distribution's metadata,
not an in-process registration) without touching the environment that runs the tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# About 25 s in all (five subprocesses that each import torch, plus an offline pip build); kept in
# the default suite because installing a third-party plugin is the path users depend on.
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "wynerkit-example-plugin"
SPEC = "examples/wynerkit-example-plugin/spec.yaml"  # relative to ROOT, the subprocesses' cwd
TIMEOUT = 300


def child_env(site: Path, **extra: str) -> dict[str, str]:
    """The current environment with ``site`` first on PYTHONPATH and no plugin blocked by default."""
    env = {k: v for k, v in os.environ.items() if k != "WYNERKIT_BLOCK_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run(args: list[str], site: Path, cwd: Path = ROOT, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=child_env(site, **extra_env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def shown(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Install the example once per module; returns (site directory, copy of the example's source).

    pip builds from a copy so that the in-tree build (``build/``, ``*.egg-info``) never lands in
    the repository and concurrent test runs cannot trip over each other's build files.
    """
    for needed in ("pip", "setuptools"):
        assert importlib.util.find_spec(needed), f"{needed} is missing: install the dev extra (pip install -e '.[dev]')"
    base = tmp_path_factory.mktemp("example-plugin")
    source = base / "src"
    shutil.copytree(
        EXAMPLE, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")
    )
    site = base / "site"
    pip = [
        "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
        "--disable-pip-version-check", "--quiet", "--target", str(site), str(source),
    ]  # fmt: skip
    result = run(pip, site, cwd=base)
    assert result.returncode == 0, f"pip could not install the example plugin:\n{shown(result)}"
    return site, source


@pytest.fixture(scope="module")
def site(install: tuple[Path, Path]) -> Path:
    return install[0]


def test_plugins_list_shows_circle_pairs_next_to_the_builtins(site: Path) -> None:
    result = run(["-m", "wynerkit", "plugins", "list", "--json"], site)
    assert result.returncode == 0, shown(result)
    components = json.loads(result.stdout)
    by_key = {(c["kind"], c["name"]): c for c in components}
    circle = by_key.get(("dataset", "circle-pairs"))
    assert circle is not None, shown(result)
    assert circle["plugin"] == "example"
    assert circle["version"] == "0.1.0"
    assert circle["summary"], "the summary should default to the factory's first docstring line"
    assert ("modality", "vector") in by_key, shown(result)
    assert ("model", "variational-wyner") in by_key, shown(result)
    assert "plugin 'example'" not in result.stderr, shown(result)


def test_the_example_spec_is_valid(site: Path) -> None:
    result = run(["-m", "wynerkit", "spec", "validate", SPEC], site)
    assert result.returncode == 0, shown(result)
    assert f"{SPEC}: valid" in result.stdout


def test_blocking_the_plugin_makes_circle_pairs_unknown(site: Path) -> None:
    listed = run(["-m", "wynerkit", "plugins", "list", "--json"], site, WYNERKIT_BLOCK_PLUGINS="example")
    assert listed.returncode == 0, shown(listed)
    assert "circle-pairs" not in {c["name"] for c in json.loads(listed.stdout)}

    result = run(["-m", "wynerkit", "spec", "validate", SPEC], site, WYNERKIT_BLOCK_PLUGINS="example")
    assert result.returncode == 2, shown(result)
    lines = result.stderr.splitlines()
    assert any("circle-pairs" in line and "unknown" in line for line in lines), shown(result)
    assert "Traceback" not in result.stderr


def test_the_example_tests_pass_against_the_installed_plugin(install: tuple[Path, Path]) -> None:
    site, source = install
    where = run(["-c", "import wynerkit_example; print(wynerkit_example.__file__)"], site, cwd=site.parent)
    assert where.returncode == 0, shown(where)
    assert Path(where.stdout.strip()).is_relative_to(site), "the tests must import the installed plugin"
    # cwd is outside the source copy, so its wynerkit_example/ cannot shadow the installed one.
    result = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")], site, cwd=site.parent)
    assert result.returncode == 0, shown(result)
