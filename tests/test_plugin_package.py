"""The built-in plugins form one package, ``wynerkit_plugins``, whose imports map to its folders.

Rules kept here (docs/architecture.md, "Built-in plugins"):
- every built-in entry point names a module whose import path is its file path;
- no plugin module imports another plugin module, so blocking a plugin unloads all of it;
- a library module beside the plugins (outside ``shared/``) serves exactly one plugin: code that
  two plugins need lives in ``wynerkit_plugins/shared/``, and every shared module is documented.

Modules are parsed with ``ast``; nothing is imported except in the blocking test's subprocess.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

from wynerkit.plugins import BLOCK_ENV

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "wynerkit_plugins"
SHARED = f"{PACKAGE}.shared"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / PACKAGE).rglob("*.py"))}


@cache
def entry_points() -> dict[str, str]:
    """Built-in entry-point name -> module."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(project["entry-points"]["wynerkit"])


@cache
def imported(module: str) -> frozenset[str]:
    """The ``wynerkit_plugins`` modules ``module`` imports, anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(modules()[module].read_text())):
        assert not (isinstance(node, ast.ImportFrom) and node.level), f"{module}: use absolute imports"
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules())
    return frozenset(found - {module})


def reached(module: str) -> set[str]:
    """Every module ``module`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in imported(todo.pop()) - seen:
            seen.add(name)
            todo.append(name)
    return seen


def test_every_builtin_entry_point_is_a_module_at_its_own_path():
    for name, module in entry_points().items():
        assert module.startswith(f"{PACKAGE}."), f"entry point {name!r} -> {module!r} is outside {PACKAGE}"
        assert module in modules(), f"entry point {name!r} -> {module!r} has no file {module.replace('.', '/')}.py"


def test_no_plugin_module_imports_another():
    plugins = set(entry_points().values())
    for module in sorted(plugins):
        others = sorted(reached(module) & (plugins - {module}))
        assert not others, f"{module} imports the plugin module(s) {others}: move what they share to {SHARED}"


def test_library_modules_beside_the_plugins_serve_one_plugin_each():
    plugins = set(entry_points().values())
    users: dict[str, set[str]] = {}
    for plugin in plugins:
        for module in reached(plugin):
            users.setdefault(module, set()).add(plugin)
    for module, by in sorted(users.items()):
        if module in plugins or module.startswith(SHARED):
            continue
        assert len(by) == 1, f"{module} is used by the plugins {sorted(by)}: it belongs in {SHARED}"


def test_shared_modules_do_not_register_anything():
    for module, path in modules().items():
        if module.startswith(f"{SHARED}."):
            assert "@hookimpl" not in path.read_text(), f"{module} implements a hook: plugins live outside shared/"


def test_every_shared_module_is_documented_in_the_architecture():
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    for module, path in modules().items():
        if module.startswith(f"{SHARED}.") and path.name != "__init__.py":
            assert f"`{path.name}`" in architecture, (
                f"{path.relative_to(ROOT)} is not described in docs/architecture.md"
            )


PROBE = """
import json, sys
from wynerkit.plugins import PluginHost, discover
host = PluginHost.load(discover(builtin_only=True))
print(json.dumps([m for m in sys.modules if m.startswith("wynerkit_plugins.models.")]))
print(json.dumps(host.registry.names("model")))
"""


def test_blocking_a_model_plugin_leaves_its_module_unimported_and_its_siblings_working():
    env = {**os.environ, BLOCK_ENV: "variational-wyner"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded, models = (json.loads(line) for line in result.stdout.splitlines())
    assert "wynerkit_plugins.models.variational_wyner" not in loaded
    assert "wynerkit_plugins.models.iiae" in loaded
    assert "variational-wyner" not in models
    assert {"iiae", "wyner-degenerate-local"} <= set(models)
