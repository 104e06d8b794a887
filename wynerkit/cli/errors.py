"""The CLI's error boundary: every failure a user can cause or meet becomes one line, never a traceback.

- ``UsageError``: its lines as they are, exit 2; any other ``WynerkitError``: ``wynerkit: error: ...``, exit 1.
- A file that cannot be read or written (``OSError``): one line naming the file, the reason and what
  to do; exit 2 when the path itself is wrong (a missing file, a file where a directory must be, a
  directory where a file must be), exit 1 when the place is (permissions, a read-only file system, a
  full disk, a failing device).
- A file whose content cannot be decoded (text encoding, JSON, YAML, safetensors, images, archives):
  one line naming the file where the failing code had it in hand, exit 2 (bad input).
- Ctrl-C (``KeyboardInterrupt``): one line, exit 130 (128 + SIGINT), as shells expect.

Anything else is a bug and keeps its traceback. ``guard_commands`` puts the boundary around every
command of an app, the ones plugins add included.
"""

from __future__ import annotations

import errno
import functools
import gzip
import json
import os
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any, TypeVar

import typer
import yaml

from wynerkit.errors import UsageError, WynerkitError

F = TypeVar("F", bound=Callable[..., Any])
USAGE, IO_ERROR, INTERRUPTED = 2, 1, 130
_GUARDED = "__wynerkit_error_boundary__"

_PLACE_PROBLEMS = {
    errno.EACCES: "permission denied; choose a place you can write to, or change its permissions",
    errno.EPERM: "operation not permitted; choose another place, or change its permissions",
    errno.EROFS: "the file system is read-only; choose a writable place",
    errno.ENOSPC: "no space left on the device; free some space or choose another place",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another place",
    errno.EIO: "input/output error from the device; check the disk",
}
"""Errors of the place, not of the path: exit 1."""


def _decoding_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean a file's content is not what it should be (optional libraries only when installed)."""
    found: list[type[BaseException]] = [
        UnicodeDecodeError,
        json.JSONDecodeError,
        yaml.YAMLError,
        zipfile.BadZipFile,
        gzip.BadGzipFile,  # an OSError without an errno
        zlib.error,
        EOFError,
    ]
    try:
        from safetensors import SafetensorError

        found.append(SafetensorError)
    except ImportError:  # pragma: no cover - safetensors is a dependency
        pass
    try:
        from PIL import Image, UnidentifiedImageError

        found += [Image.DecompressionBombError, UnidentifiedImageError]
    except ImportError:  # pragma: no cover - Pillow is a dependency
        pass
    return tuple(found)


DECODING_ERRORS = _decoding_errors()
HANDLED: tuple[type[BaseException], ...] = (WynerkitError, KeyboardInterrupt, OSError, *DECODING_ERRORS)
"""What the boundary turns into lines; anything else is a bug and keeps its traceback."""


def shown(path: str | bytes | os.PathLike[str]) -> str:
    """A path as text on one line: quoted with escapes when it holds a line break or other control character."""
    text = os.fsdecode(path)
    return text if text.isprintable() else repr(text)


def os_error_line(exc: OSError) -> tuple[str, int]:
    """One line for a failed file operation, and its exit code (2: the path is wrong, 1: the place is)."""
    path = exc.filename if exc.filename is not None else _file_in_hand(exc.__traceback__)
    named = f"{shown(path)}: " if path is not None else ""
    reason = " ".join((exc.strerror or str(exc)).split()) or type(exc).__name__
    if exc.errno in _PLACE_PROBLEMS:
        return f"{named}{_PLACE_PROBLEMS[exc.errno]}", IO_ERROR
    if exc.errno == errno.ENOTDIR:
        parents = Path(os.fsdecode(path)).parents if path is not None else []
        blocker = next((p for p in parents if p.exists() and not p.is_dir()), None)
        what = f"{shown(blocker)} is a file" if blocker is not None else "a part of the path is"
        return f"{named}{what}, not a directory; choose a path that does not go through it", USAGE
    if exc.errno == errno.EEXIST:
        if path is not None and Path(os.fsdecode(path)).is_file():
            return f"{named}is a file, where a directory must go; remove it or choose another place", USAGE
        return f"{named}already exists; remove it or choose another name", USAGE
    if exc.errno == errno.EISDIR:
        return f"{named}is a directory; pass a file", USAGE
    if exc.errno == errno.ENOENT:
        return f"{named}no such file or directory; check the path", USAGE
    return f"{named}{reason}", IO_ERROR


def error_exit(exc: BaseException) -> tuple[list[str], int]:
    """The lines and exit code the boundary reports for ``exc``, one of the ``HANDLED`` errors."""
    if isinstance(exc, UsageError):
        return exc.problems, USAGE
    if isinstance(exc, WynerkitError):
        return [f"wynerkit: error: {line}" for line in str(exc).splitlines() or [type(exc).__name__]], IO_ERROR
    if isinstance(exc, KeyboardInterrupt):
        return ["wynerkit: interrupted"], INTERRUPTED
    if isinstance(exc, DECODING_ERRORS):  # before OSError: some format errors are OSErrors without an errno
        path = getattr(exc, "filename", None) or _file_in_hand(exc.__traceback__)
        where = f"{shown(path)}: " if path else "a file: "
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return [f"{where}cannot be decoded ({type(exc).__name__}: {reason}); check or replace the file"], USAGE
    if isinstance(exc, OSError):
        line, code = os_error_line(exc)
        return [line if code == USAGE else f"wynerkit: error: {line}"], code
    raise TypeError(f"the error boundary does not handle {type(exc).__name__}") from exc


def reports_usage_errors(command: F) -> F:
    """The error boundary around one command (see the module docstring); marks the command as guarded."""
    if getattr(command, _GUARDED, False):
        return command

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HANDLED as exc:
            raise typer.Exit(_report(exc)) from None

    setattr(wrapper, _GUARDED, True)
    return wrapper  # type: ignore[return-value]


def run_guarded(program: Callable[[], object]) -> None:
    """Run the whole program (plugin loading, the app) inside the boundary; exit with its code on a failure."""
    try:
        program()
    except HANDLED as exc:
        sys.exit(_report(exc))


def _report(exc: BaseException) -> int:
    """Print the boundary's lines for ``exc``; returns its exit code."""
    lines, code = error_exit(exc)
    for line in lines:
        typer.echo(line, err=True)
    return code


def guard_commands(app: typer.Typer) -> None:
    """Put the boundary around every command of ``app`` and its sub-apps that does not have it yet."""
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = reports_usage_errors(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            guard_commands(group.typer_instance)


def _file_in_hand(traceback: TracebackType | None) -> str | None:
    """The file the failing code was working on: the innermost ``Path`` method's path, else a ``path`` /
    ``file`` / ``filename`` local naming an existing file (e.g. ``json.loads(path.read_text())``)."""
    frames = []
    while traceback is not None:
        frames.append(traceback.tb_frame)
        traceback = traceback.tb_next
    for frame in reversed(frames):
        own = frame.f_locals.get("self")
        if isinstance(own, PurePath) and "pathlib" in frame.f_code.co_filename:
            return str(own)
        for name in ("path", "file", "filename"):
            value = frame.f_locals.get(name)
            if isinstance(value, (str, PurePath)) and value and Path(value).is_file():
                return str(value)
    return None
