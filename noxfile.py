"""nox sessions: ``nox -s tests``, ``nox -s slow``, ``nox -s lint``, ``nox -s quickstart``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
TORCH = "torch==2.13.0"  # the CPU build; CI pins it, the package itself accepts torch>=2.2


@nox.session
def tests(session: nox.Session) -> None:
    """The default test suite (slow tests excluded)."""
    session.install(TORCH)
    session.install("-e", ".[dev]")
    session.run("pytest", "-m", "not slow", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """Only the tests marked slow."""
    session.install(TORCH)
    session.install("-e", ".[dev]")
    session.run("pytest", "-m", "slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def quickstart(session: nox.Session) -> None:
    """Run the quickstart spec."""
    session.install(TORCH)
    session.install("-e", ".")
    session.run("wynerkit", "run", "specs/quickstart.yaml")
