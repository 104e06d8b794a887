"""Progress for long work: a rich progress bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

LOG_EVERY_BYTES = 32 << 20


def interactive() -> bool:
    """True when stderr is a terminal (where a live bar is readable)."""
    return sys.stderr.isatty()


@contextmanager
def byte_progress() -> Iterator[Callable[[str, int, int | None], None]]:
    """A ``progress(label, done, total)`` callback for downloads."""
    if interactive():
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, TimeRemainingColumn(), console=Console(stderr=True)) as bar:
            tasks: dict[str, int] = {}

            def update(label: str, done: int, total: int | None) -> None:
                if label not in tasks:
                    tasks[label] = bar.add_task(label, total=total)
                bar.update(tasks[label], completed=done, total=total)

            yield update
        return
    logged: dict[str, int] = {}

    def log(label: str, done: int, total: int | None) -> None:
        if done - logged.get(label, -LOG_EVERY_BYTES) >= LOG_EVERY_BYTES or done == total:
            logged[label] = done
            shown = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            print(f"{label}: {shown}", file=sys.stderr, flush=True)

    yield log


class StepProgress:
    """Training progress: a live rich bar with the latest losses on a terminal, log lines otherwise."""

    def __init__(self, total: int, done: int = 0, *, quiet: bool = False) -> None:
        """``quiet``: show nothing (the other ranks of a distributed run; rank 0 reports)."""
        self.total, self.quiet = total, quiet
        self.bar: Progress | None = None
        if interactive() and not quiet:
            columns = (TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self.bar = Progress(
                *columns, TimeRemainingColumn(), TextColumn("{task.description}"), console=Console(stderr=True)
            )
            self.task = self.bar.add_task("", total=total, completed=done)

    def __enter__(self) -> StepProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def advance(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step)

    def report(self, step: int, summary: str) -> None:
        """Show the latest averaged losses (a log line when not on a terminal)."""
        if self.bar is not None:
            self.bar.update(self.task, completed=step, description=summary)
        elif not self.quiet:
            print(f"step {step}/{self.total} {summary}", file=sys.stderr, flush=True)
