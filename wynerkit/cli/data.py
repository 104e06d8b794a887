"""``wynerkit data info|verify|download``: the files of every registered data source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from wynerkit.cli.errors import reports_usage_errors
from wynerkit.cli.tables import print_table
from wynerkit.components import BuildContext
from wynerkit.data.download import DownloadError, download_source
from wynerkit.data_root import DATA_ENV, resolve_data_root
from wynerkit.datafiles import DataSource, FileStatus, registered_sources, verify_source
from wynerkit.errors import UsageError
from wynerkit.plugins import PluginHost
from wynerkit.progress import byte_progress

RootOption = Annotated[
    Path | None,
    typer.Option("--root", help=f"Data root (default: ${DATA_ENV}, else the per-user cache directory)."),
]
NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="A data source, as listed by `wynerkit data info`.")]


def data_sources(host: PluginHost) -> dict[str, DataSource]:
    return registered_sources(BuildContext(registry=host.registry))


def source_named(host: PluginHost, name: str) -> DataSource:
    sources = data_sources(host)
    if name not in sources:
        raise UsageError(f"unknown data source {name!r}; registered: {', '.join(sorted(sources)) or '(none)'}")
    return sources[name]


def source_row(source: DataSource, root: Path, statuses: list[FileStatus]) -> dict[str, object]:
    return {
        "name": source.name,
        "path": str(source.folder(root)),
        "present": all(s.present for s in statuses),
        "verified": all(s.verified for s in statuses),
        "downloadable": source.downloadable,
        "get": source.get_command(),
        "description": source.description,
        "files": [
            {"name": s.file.name, "path": str(s.path) if s.path else None, "present": s.present, "verified": s.verified}
            for s in statuses
        ],
    }


def add_data_commands(app: typer.Typer, host: PluginHost) -> None:
    data_app = typer.Typer(help="Find, verify and download the files datasets read.", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    @data_app.command("info")
    @reports_usage_errors
    def info(
        as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one object per source.")] = False,
        root: RootOption = None,
    ) -> None:
        """Each data source: where it is looked for, and whether its files are present and verified."""
        data_root = resolve_data_root(root)
        rows = [source_row(s, data_root, verify_source(s, data_root)) for s in data_sources(host).values()]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        yes = {True: "yes", False: "no"}
        cells = [
            [
                row["name"],
                row["path"],
                yes[row["present"]],
                yes[row["verified"]],
                row["get"] if row["downloadable"] else f"by hand (see: wynerkit data verify {row['name']})",
            ]
            for row in rows
        ]
        print_table(f"data root: {data_root}", ("name", "path", "present", "verified", "to get it"), cells)

    @data_app.command("verify")
    @reports_usage_errors
    def verify(name: NameArgument, root: RootOption = None) -> None:
        """Check every file's checksum; exit 0 when all match, 1 otherwise (naming each bad file)."""
        data_root = resolve_data_root(root)
        source = source_named(host, name)
        problems = [p for s in verify_source(source, data_root) if (p := s.problem())]
        for problem in problems:
            typer.echo(f"{name}: {problem}", err=True)
        if problems:
            typer.echo(f"{name}: to get the files: {source.get_command()}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{name}: all {len(source.files)} files verified in {source.folder(data_root)}")

    @data_app.command("download")
    @reports_usage_errors
    def download(name: NameArgument, root: RootOption = None) -> None:
        """Download a source's missing or corrupt files (resumable; verified before they are kept)."""
        data_root = resolve_data_root(root)
        source = source_named(host, name)
        if not source.downloadable:
            raise UsageError(f"{name}: cannot be downloaded automatically: {source.how_to_get}")
        try:
            with byte_progress() as progress:
                download_source(source, data_root, progress)
        except DownloadError as exc:
            typer.echo(f"{name}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{name}: all {len(source.files)} files verified in {source.folder(data_root)}")
