"""Install the example plugin offline into a temporary directory and run Python subprocesses that see it.

The plugin is installed with ``pip --target`` into a directory put first on PYTHONPATH of the
subprocesses only, so tests exercise real entry-point discovery (a distribution's metadata, not an
in-process registration) without touching the environment that runs them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "wynerkit-example-plugin"
TIMEOUT = 300


def child_env(site: Path, **extra: str) -> dict[str, str]:
    """The current environment with ``site`` first on PYTHONPATH and no plugin blocked by default."""
    env = {k: v for k, v in os.environ.items() if k != "WYNERKIT_BLOCK_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run(args: list[str], site: Path, cwd: Path = ROOT, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``cwd`` with the installed example importable."""
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


def install_example(base: Path) -> tuple[Path, Path]:
    """Install the example under ``base``; returns (site directory, copy of the example's source).

    pip builds from a copy so that the in-tree build (``build/``, ``*.egg-info``) never lands in
    the repository and concurrent test runs cannot trip over each other's build files.
    """
    for needed in ("pip", "setuptools"):
        assert importlib.util.find_spec(needed), f"{needed} is missing: install the dev extra (pip install -e '.[dev]')"
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
