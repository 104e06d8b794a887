"""Downloads that resume, check checksums and never leave a file that looks valid but is not.

A file is fetched into ``<name>.part`` next to its destination. An interrupted download keeps the
``.part`` file and the next attempt resumes it with an HTTP Range request. Only a download whose
checksum matches is renamed (atomically) to the real name; a mismatch deletes the ``.part`` file
and tries the next mirror.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from wynerkit.datafiles import DataFile, DataSource, FileStatus, check_file, content_digest
from wynerkit.errors import WynerkitError

Progress = Callable[[str, int, int | None], None]
"""Called as ``progress(label, bytes_so_far, total_or_None)`` while a file downloads."""
TIMEOUT_S = 60


class DownloadError(WynerkitError):
    """No mirror delivered a file with the right checksum."""


def stored_name(file: DataFile) -> str:
    """The name a download is stored under: mirrors serve ``.gz`` for gzip-able files."""
    return file.name + ".gz" if file.gzip_ok else file.name


def download_file(file: DataFile, folder: Path, progress: Progress | None = None) -> Path:
    """Fetch one file into ``folder`` from its first mirror that delivers the right checksum."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / stored_name(file)
    part = target.with_name(target.name + ".part")
    failures = []
    for url in file.urls:
        try:
            _fetch(url, part, progress)
        except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
            kept = f" (kept {part.name} to resume)" if part.exists() and part.stat().st_size else ""
            failures.append(f"{url}: {exc}{kept}")
            continue
        actual = content_digest(part, file.algorithm, gzipped=target.suffix == ".gz")
        if actual == file.expected:
            os.replace(part, target)
            for stale in file.candidates(folder):  # a corrupt copy stored under another name would shadow it
                if stale != target:
                    stale.unlink(missing_ok=True)
            return target
        part.unlink(missing_ok=True)
        failures.append(f"{url}: {file.algorithm} mismatch: expected {file.expected}, got {actual}")
    raise DownloadError(f"could not download {file.name}:\n  " + "\n  ".join(failures or ["no mirror is known"]))


def _fetch(url: str, part: Path, progress: Progress | None) -> None:
    """Download ``url`` into ``part``, resuming from its current size when the server allows."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part is already complete
            exc.close()
            return
        raise
    with response:
        resumed = response.status == 206
        total = response.headers.get("Content-Length")
        expected_total = (int(total) + (have if resumed else 0)) if total else None
        mode = "ab" if resumed else "wb"
        done = have if resumed else 0
        with part.open(mode) as out:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(part.name.removesuffix(".part"), done, expected_total)
    if expected_total is not None and done < expected_total:
        raise OSError(f"connection closed after {done} of {expected_total} bytes")


def download_source(source: DataSource, root: Path, progress: Progress | None = None) -> list[FileStatus]:
    """Download every missing or corrupt file of a source; returns the final status of each file."""
    folder = source.folder(root)
    statuses = []
    for file in source.files:
        status = check_file(file, folder)
        if not status.verified:  # download_file already checked the new file: no second pass over it
            path = download_file(file, folder, progress)
            status = FileStatus(file, path, file.expected, tuple(file.candidates(folder)))
        statuses.append(status)
    return statuses
