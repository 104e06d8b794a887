"""The example third-party plugin works end to end once installed, exactly as a user would see it.

The plugin is built and installed offline into a temporary directory that is put on PYTHONPATH
of subprocesses (``example_install``), so the test exercises real entry-point discovery.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from example_install import install_example, run, shown

# About 35 s in all (five subprocesses that each import torch, the example's own tests with three more,
# plus an offline pip build); kept in the default suite because installing a third-party plugin is
# the path users depend on.
SPEC = "examples/wynerkit-example-plugin/spec.yaml"  # relative to the repository root, the subprocesses' cwd


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The example installed once per module: (site directory, copy of the example's source)."""
    return install_example(tmp_path_factory.mktemp("example-plugin"))


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


@pytest.mark.slow  # CLI subprocesses with the plugin blocked; CI runs the slow tests too
def test_blocking_the_plugin_makes_circle_pairs_unknown(site: Path) -> None:
    listed = run(["-m", "wynerkit", "plugins", "list", "--json"], site, WYNERKIT_BLOCK_PLUGINS="example")
    assert listed.returncode == 0, shown(listed)
    assert "circle-pairs" not in {c["name"] for c in json.loads(listed.stdout)}

    result = run(["-m", "wynerkit", "spec", "validate", SPEC], site, WYNERKIT_BLOCK_PLUGINS="example")
    assert result.returncode == 2, shown(result)
    lines = result.stderr.splitlines()
    assert any("circle-pairs" in line and "unknown" in line for line in lines), shown(result)
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # runs the example's own test suite in a subprocess; CI runs the slow tests too
def test_the_example_tests_pass_against_the_installed_plugin(install: tuple[Path, Path]) -> None:
    site, source = install
    where = run(["-c", "import wynerkit_example; print(wynerkit_example.__file__)"], site, cwd=site.parent)
    assert where.returncode == 0, shown(where)
    assert Path(where.stdout.strip()).is_relative_to(site), "the tests must import the installed plugin"
    # cwd is outside the source copy, so its wynerkit_example/ cannot shadow the installed one.
    result = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")], site, cwd=site.parent)
    assert result.returncode == 0, shown(result)
