"""The core's rooms import each other in one direction only: the table in docs/architecture.md.

Each module under ``wynerkit/`` is parsed with ``ast`` (nothing is imported) and every import of a
``wynerkit`` module, absolute or relative and wherever it stands (a function body, ``TYPE_CHECKING``),
is mapped to the room it lands in. A room is a subpackage (``wynerkit/spec/`` is the room ``spec``);
the modules directly under ``wynerkit/`` are the room ``core``, except the three named in
``TOP_LEVEL_ROOMS``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "wynerkit"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"

TOP_LEVEL_ROOMS = {
    "__init__": "api",  # the public names a plugin author imports: ``from wynerkit import Sample``
    "__main__": "cli",  # ``python -m wynerkit``
    "testing": "testing",  # contract checks for plugin authors
}

ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "api": {"core", "spec"},
    "spec": {"core"},
    "data": {"core"},
    "rundir": {"core"},
    "training": {"core", "data", "rundir"},
    "figures": {"core"},
    "evaluation": {"core", "spec", "data", "rundir", "training", "figures"},
    "runs": {"core", "api", "spec", "data", "rundir", "training", "figures", "evaluation"},
    "sweeps": {"core", "spec", "rundir", "training", "evaluation", "runs"},
    "cli": {"core", "api", "spec", "data", "rundir", "training", "figures", "evaluation", "runs", "sweeps"},
    "testing": {"core", "spec", "training", "figures", "evaluation"},
}
"""room -> the other rooms its modules may import (a room may always import itself)."""


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def dotted_name(path: Path) -> str:
    """``wynerkit/spec/loading.py`` -> ``wynerkit.spec.loading``; a package is its ``__init__``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room_of(module: str) -> str:
    """The room of a dotted ``wynerkit`` module name (``wynerkit`` itself is the package's ``__init__``)."""
    parts = module.split(".")[1:]
    if not parts:
        return TOP_LEVEL_ROOMS["__init__"]
    if (PACKAGE / parts[0]).is_dir():
        return parts[0]
    return TOP_LEVEL_ROOMS.get(parts[0], "core")


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, dotted module) for every import in ``path`` (or in ``source`` read as if it were ``path``).

    Relative imports are resolved against ``path``. ``from wynerkit import hookspecs`` imports the
    module ``wynerkit.hookspecs``; ``from wynerkit import Sample`` imports the package ``wynerkit``.
    """
    here = dotted_name(path).split(".")
    package = here if is_package(path) else here[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [(node.lineno, submodule_or(module, alias.name)) for alias in node.names]
    return found


def submodule_or(module: str, name: str) -> str:
    """``module.name`` when that is a module or package under ``wynerkit/``, else ``module``."""
    candidate = PACKAGE.parent / module.replace(".", "/") / name
    is_module = candidate.with_suffix(".py").is_file() or candidate.is_dir()
    return f"{module}.{name}" if module.split(".")[0] == "wynerkit" and is_module else module


def forbidden_imports(path: Path, source: str | None = None) -> list[str]:
    """``FILE:LINE: room imports module (room)`` for each import the table does not allow."""
    room = room_of(dotted_name(path))
    return [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {room} imports {module} (room {room_of(module)})"
        for line, module in imported_modules(path, source)
        if module.split(".")[0] == "wynerkit" and room_of(module) not in ALLOWED[room] | {room}
    ]


def test_every_room_is_in_the_table():
    rooms = {room_of(dotted_name(path)) for path in modules()}
    assert rooms == set(ALLOWED), "add the new room to ALLOWED here and to docs/architecture.md"


def test_the_table_has_no_cycle():
    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(room == goal or (room not in seen and reaches(room, goal, seen | {room})) for room in ALLOWED[start])

    assert [room for room in ALLOWED if reaches(room, room)] == []


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_the_rooms_its_room_may_import(path):
    assert forbidden_imports(path) == []


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_core_never_imports_a_builtin_plugin(path):
    plugins = [line for line, module in imported_modules(path) if module.split(".")[0] == "wynerkit_plugins"]
    assert plugins == [], f"{path.relative_to(PACKAGE.parent)} imports wynerkit_plugins on lines {plugins}"


@pytest.mark.parametrize(
    "line",
    [
        "import wynerkit.training.trainer",
        "from wynerkit.training.trainer import Trainer",
        "from wynerkit.training import trainer",
        "from ..training import trainer",
        "from wynerkit import cli",
        "def later():\n    from wynerkit.sweeps import sweep",
    ],
)
def test_a_spec_module_importing_a_later_room_is_caught(line):
    assert forbidden_imports(PACKAGE / "spec" / "loading.py", source=line) != []


def test_a_spec_module_importing_the_core_passes():
    source = (
        "from wynerkit.errors import UsageError\nfrom . import source\nfrom wynerkit.spec.models import SpecBuilder"
    )
    assert forbidden_imports(PACKAGE / "spec" / "loading.py", source=source) == []


def test_the_table_is_the_one_in_the_architecture_doc():
    """The doc's rows ``| `room` | `other`, `other` |`` (or ``—``) list the same rooms as ``ALLOWED``."""
    documented: dict[str, set[str]] = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].strip("`") in ALLOWED and cells[0].startswith("`"):
            documented[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[1]))
    assert documented == ALLOWED
