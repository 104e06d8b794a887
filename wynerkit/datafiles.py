"""Data sources: the files a dataset needs, where to get them, and how to check them.

A plugin registers a ``DataSource`` per folder under the data root (``mnist``, ``svhn``, ...).
``wynerkit data info`` / ``verify`` / ``download`` work on these descriptions only, so a new
dataset plugin gets those commands for free.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from wynerkit.errors import UsageError

if TYPE_CHECKING:
    from wynerkit.components import BuildContext  # components imports this module (through interfaces)

CHUNK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One file of a data source.

    ``name`` is the path under ``<root>/<source>/``. When ``gzip_ok`` is true the file may be stored
    as ``name`` or ``name + ".gz"`` and the checksum is of the decompressed content (MNIST's
    official checksums are of the decompressed files). ``urls`` are mirrors, tried in order; each
    serves the file as stored (``name + ".gz"`` when ``gzip_ok``).
    """

    name: str
    md5: str | None = None
    sha256: str | None = None
    gzip_ok: bool = False
    urls: tuple[str, ...] = ()
    size: int | None = None
    """Size in bytes of the (decompressed) content, when known; shown by ``data info``."""

    def __post_init__(self) -> None:
        if not (self.md5 or self.sha256):
            raise ValueError(f"data file {self.name!r} needs an md5 or sha256 checksum")

    def candidates(self, folder: Path) -> list[Path]:
        """The places this file may be stored, in order of preference."""
        plain = folder / self.name
        return [plain, plain.with_name(plain.name + ".gz")] if self.gzip_ok else [plain]

    def locate(self, folder: Path) -> Path | None:
        """The stored file, or None when absent."""
        return next((p for p in self.candidates(folder) if p.is_file()), None)

    @property
    def algorithm(self) -> str:
        return "sha256" if self.sha256 else "md5"

    @property
    def expected(self) -> str:
        return (self.sha256 or self.md5 or "").lower()


@dataclass(frozen=True)
class DataSource:
    """A folder of files under the data root, e.g. ``mnist`` with its four IDX files."""

    name: str
    files: tuple[DataFile, ...]
    description: str = ""
    homepage: str = ""
    how_to_get: str = ""
    """What to do when files are missing and cannot be downloaded (e.g. a manual-download link)."""
    subdir: str | None = None
    """The folder under the data root when it is not ``name`` (e.g. ``qmul/shoes`` for ``qmul-shoes``)."""

    @property
    def downloadable(self) -> bool:
        return all(f.urls for f in self.files)

    def folder(self, root: Path) -> Path:
        return root / (self.subdir or self.name)

    def get_command(self) -> str:
        return f"wynerkit data download {self.name}" if self.downloadable else self.how_to_get


@dataclass(frozen=True)
class FileStatus:
    """What ``verify`` found for one file."""

    file: DataFile
    path: Path | None
    actual: str | None = None
    looked_for: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def present(self) -> bool:
        return self.path is not None

    @property
    def verified(self) -> bool:
        return self.actual is not None and self.actual == self.file.expected

    def problem(self) -> str | None:
        """One line naming the file and what is wrong, or None when it is fine."""
        if not self.present:
            return f"missing: {' or '.join(str(p) for p in self.looked_for)}"
        if not self.verified:
            return (
                f"{self.path}: {self.file.algorithm} mismatch: expected {self.file.expected}, got {self.actual}"
                f"{' (of the decompressed content)' if self.path.suffix == '.gz' else ''}"
            )
        return None


def open_content(path: Path, gzipped: bool | None = None) -> BinaryIO:
    """The file's content, decompressed when it is gzip (by default: when it ends in ``.gz``)."""
    gzipped = path.suffix == ".gz" if gzipped is None else gzipped
    return gzip.open(path, "rb") if gzipped else path.open("rb")  # type: ignore[return-value]


def iter_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def content_digest(path: Path, algorithm: str, gzipped: bool | None = None) -> str:
    """Hex digest of the file's content (decompressed for gzip); an unreadable file says why instead."""
    digest = hashlib.new(algorithm)
    try:
        with open_content(path, gzipped) as stream:
            for chunk in iter_chunks(stream):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a damaged stream is zlib.error
        return f"unreadable ({type(exc).__name__}: {exc})"
    return digest.hexdigest()


def check_file(file: DataFile, folder: Path) -> FileStatus:
    path = file.locate(folder)
    looked_for = tuple(file.candidates(folder))
    if path is None:
        return FileStatus(file, None, looked_for=looked_for)
    return FileStatus(file, path, content_digest(path, file.algorithm), looked_for)


def verify_source(source: DataSource, root: Path) -> list[FileStatus]:
    """Check every file of a source under ``root``."""
    return [check_file(f, source.folder(root)) for f in source.files]


def require_files(source: DataSource, root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """The verified paths of a source's files (all, or those named); a UsageError otherwise.

    The error names every missing or corrupt file and says how to get it.
    """
    wanted = [f for f in source.files if names is None or f.name in names]
    statuses = [check_file(f, source.folder(root)) for f in wanted]
    problems = [p for s in statuses if (p := s.problem())]
    if problems:
        hint = source.get_command()
        raise UsageError([*(f"{source.name}: {p}" for p in problems), f"{source.name}: to get the files: {hint}"])
    return {s.file.name: s.path for s in statuses if s.path is not None}


def registered_sources(context: BuildContext) -> dict[str, DataSource]:
    """Every data source in ``context``'s registry by name, as its factory builds it."""
    return {c.name: c.factory(c.params(), context) for c in context.registry.of_kind("data_source")}
