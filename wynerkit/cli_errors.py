"""How every command reports bad input: one line per problem on stderr, exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from wynerkit.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def reports_usage_errors(command: F) -> F:
    """Turn a UsageError into its lines on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UsageError as exc:
            for line in exc.problems:
                typer.echo(line, err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
