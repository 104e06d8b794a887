"""``RunDir`` owns the run-directory layout: the names users rely on, spelled out in one module."""

from __future__ import annotations

import ast
from pathlib import Path

from test_training import start

from wynerkit.rundir.paths import RunDir
from wynerkit.runs.training_run import train_run

ROOT = Path(__file__).resolve().parent.parent
RUN_FILES = ("spec.yaml", "spec.resolved.json", "env.json", "metrics.jsonl", "checkpoints", "summary.json", "figures")


def test_run_dir_names_the_layout_users_rely_on():
    paths = RunDir(Path("runs/tiny/20260101-000000-abcdef01"))
    named = {
        paths.spec: "spec.yaml",
        paths.resolved_spec: "spec.resolved.json",
        paths.env: "env.json",
        paths.metrics: "metrics.jsonl",
        paths.checkpoints: "checkpoints",
        paths.best_checkpoint: "checkpoints/best",
        paths.summary: "summary.json",
        paths.figures: "figures",
        paths.lock: ".wynerkit.lock",
    }
    assert {path.relative_to(paths.path).as_posix(): name for path, name in named.items()} == {
        name: name for name in named.values()
    }
    assert paths.started_marks == (paths.metrics, paths.checkpoints, paths.summary)


def test_a_trained_run_holds_exactly_what_run_dir_names(tmp_path, builtin_host):
    run_dir, spec = start(tmp_path, builtin_host)
    paths = RunDir(run_dir)
    assert paths.is_run() and not any(p.exists() for p in paths.started_marks)
    train_run(run_dir, spec, builtin_host.registry)
    expected = {paths.spec, paths.resolved_spec, paths.env, paths.metrics, paths.checkpoints, paths.summary}
    assert set(run_dir.iterdir()) == expected | {paths.figures}
    assert paths.best_checkpoint.is_dir()


def _path_joins(source: Path) -> list[str]:
    """Every ``<path> / "<run-directory name>"`` in a module: a name typed out instead of read from RunDir."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    return [
        f"{source.relative_to(ROOT)}:{node.lineno}: / {node.right.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Div)
        and isinstance(node.right, ast.Constant)
        and node.right.value in RUN_FILES
    ]


def test_no_core_or_plugin_module_types_out_a_run_directory_name():
    modules = sorted((ROOT / "wynerkit").rglob("*.py")) + sorted((ROOT / "wynerkit_plugins").rglob("*.py"))
    found = [
        hit for module in modules if module != ROOT / "wynerkit" / "rundir" / "paths.py" for hit in _path_joins(module)
    ]
    assert found == []
