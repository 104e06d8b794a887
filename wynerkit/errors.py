"""Exceptions the core raises; the CLI turns each into one clear line and exit code 2."""

from __future__ import annotations


class WynerkitError(Exception):
    """Base of every error wynerkit reports to a user."""


class UsageError(WynerkitError):
    """Bad input from the user: each line of ``problems`` is one complete message."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class UnknownComponentError(UsageError):
    """A spec or call names a component no loaded plugin registered."""


class DuplicateComponentError(WynerkitError):
    """Two plugins registered a component of the same kind and name."""


class PluginLoadError(WynerkitError):
    """A plugin failed to import or to register its components."""
