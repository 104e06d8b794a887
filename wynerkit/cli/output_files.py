"""Checks of the files a command will write, made before it does any work."""

from __future__ import annotations

from pathlib import Path

from wynerkit.errors import UsageError


def require_output_file(path: Path, option: str) -> None:
    """A UsageError unless ``path`` can name a file: not a directory, and not under a file."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory; pass a file name, e.g. {path / 'picture.png'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{option} {path}: {parent} is a file, not a directory")
            return
