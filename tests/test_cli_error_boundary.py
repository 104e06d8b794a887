"""The CLI's error boundary: file, OS and decoding errors are one line naming the file, never a traceback.

Exit 2 when the path or the file's content is wrong, 1 when the place is (read-only, full, no
permission), 130 on Ctrl-C. Root ignores permission bits, so a read-only file system is simulated
by making ``mkdir`` under one directory fail with EROFS, as the kernel does.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from wynerkit import hookimpl
from wynerkit.cli.app import build_app
from wynerkit.cli.errors import INTERRUPTED, IO_ERROR, USAGE, os_error_line, run_guarded
from wynerkit.data_root import CACHE_ENV, cache_root
from wynerkit.datafiles import DataFile, DataSource
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit_plugins.datasets.gaussian_pairs import GaussianPairs, GaussianPairsParams

TINY = Path(__file__).parent / "specs" / "tiny.yaml"
SOURCE = "boundary-source"


class CachingPairs(GaussianPairs):
    """Gaussian pairs that, like the digit datasets, write a cache of what they generate when built."""

    def __init__(self, params: GaussianPairsParams, seed: int) -> None:
        super().__init__(params, seed)
        folder = cache_root() / "boundary"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"pairs-seed{seed}.json").write_text(json.dumps({"seed": seed}))


class BoundaryPlugin:
    """A data source to download, a dataset that caches, and commands that fail the ways files do."""

    @hookimpl
    def wynerkit_register_data_sources(self, register):
        file = DataFile(name="never.bin", md5="0" * 32, urls=("http://127.0.0.1:9/never.bin",))
        register(SOURCE, lambda params, context: DataSource(name=SOURCE, files=(file,)))

    @hookimpl
    def wynerkit_register_datasets(self, register):
        register(
            "caching-pairs", lambda params, context: CachingPairs(params, context.seed), params=GaussianPairsParams
        )

    @hookimpl
    def wynerkit_register_commands(self, cli):
        @cli.command("read-json")
        def read_json(path: Path) -> None:  # no decorator: the app guards plugin commands itself
            typer.echo(json.loads(path.read_text(encoding="utf-8")))

        @cli.command("interrupt")
        def interrupt() -> None:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def host() -> PluginHost:
    loaded = PluginHost.load(
        [*discover(builtin_only=True), PluginSource.from_object("boundary", BoundaryPlugin())], blocked=()
    )
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return loaded


@pytest.fixture
def cli(host):
    app = build_app(host)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def read_only(monkeypatch, tmp_path) -> Path:
    """A directory under which ``mkdir`` fails as on a read-only file system."""
    root = tmp_path / "read-only"
    root.mkdir()
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args, **kwargs) -> None:
        if self == root or root in self.parents:
            if self.is_dir() and kwargs.get("exist_ok"):
                return
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    return root


def one_line(result, code: int) -> str:
    """The last stderr line of a command that failed with ``code`` without a traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (OSError, KeyboardInterrupt))
    return result.stderr.strip().splitlines()[-1]


# -- run --out ------------------------------------------------------------------------------------------


def test_run_out_under_a_file_names_the_file_and_exits_2(cli, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    line = one_line(cli("run", TINY, "--out", blocker / "runs"), USAGE)
    assert line.startswith(f"--out {blocker / 'runs'}: cannot create a run directory")
    assert f"{blocker} is a file, not a directory" in line
    assert blocker.read_text() == "keep me"


def test_run_out_whose_spec_name_is_a_file_names_it_and_exits_2(cli, tmp_path):
    (tmp_path / "tiny").write_text("not a directory")
    line = one_line(cli("run", TINY, "--out", tmp_path), USAGE)
    assert f"{tmp_path / 'tiny'}: is a file, where a directory must go" in line
    assert (tmp_path / "tiny").read_text() == "not a directory"


def test_run_out_on_a_read_only_file_system_exits_2_naming_it(cli, read_only):
    line = one_line(cli("run", TINY, "--out", read_only / "runs"), USAGE)
    assert line.startswith(f"--out {read_only / 'runs'}: cannot create a run directory")
    assert "read-only; choose a writable place" in line


# -- caches and downloads in a read-only place ------------------------------------------------------------


def test_a_cache_in_a_read_only_place_is_one_line_exit_1_and_leaves_no_run(cli, read_only, monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(read_only / "cache"))
    result = cli("run", TINY, "--out", tmp_path / "runs", "--set", "data.name=caching-pairs")
    line = one_line(result, IO_ERROR)
    assert (
        line
        == f"wynerkit: error: {read_only / 'cache' / 'boundary'}: the file system is read-only; choose a writable place"
    )
    assert not list((tmp_path / "runs").glob("*/*")), "a run that could not start leaves no directory"


def test_a_download_into_a_read_only_root_is_one_line_exit_1(cli, read_only):
    line = one_line(cli("data", "download", SOURCE, "--root", read_only), IO_ERROR)
    assert line == f"wynerkit: error: {read_only / SOURCE}: the file system is read-only; choose a writable place"


# -- decoding errors, plugin commands, Ctrl-C -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "error"),
    [(b"\xff\xfe not utf-8", "UnicodeDecodeError"), (b'{"cut": ', "JSONDecodeError")],
)
def test_an_undecodable_file_in_a_plugin_command_is_named_with_exit_2(cli, tmp_path, content, error):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    line = one_line(cli("read-json", bad), USAGE)
    assert line.startswith(f"{bad}: cannot be decoded ({error}: ")
    assert line.endswith("check or replace the file")


def test_a_missing_file_in_a_plugin_command_is_named_with_exit_2(cli, tmp_path):
    line = one_line(cli("read-json", tmp_path / "missing.json"), USAGE)
    assert line == f"{tmp_path / 'missing.json'}: no such file or directory; check the path"


def test_ctrl_c_is_one_line_and_exit_130(cli):
    result = cli("interrupt")
    assert one_line(result, INTERRUPTED) == "wynerkit: interrupted"


def test_the_whole_program_is_guarded_too(capsys, tmp_path):
    def program() -> None:
        (tmp_path / "file").write_text("x")
        (tmp_path / "file" / "below").mkdir()

    with pytest.raises(SystemExit) as exited:
        run_guarded(program)
    assert exited.value.code == USAGE
    assert capsys.readouterr().err.strip() == (
        f"{tmp_path / 'file' / 'below'}: {tmp_path / 'file'} is a file, not a directory; "
        "choose a path that does not go through it"
    )


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_guarded(lambda: 1 / 0)


def test_run_out_under_a_file_in_a_real_process(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env = {**os.environ, "WYNERKIT_BLOCK_PLUGINS": ""}
    command = [sys.executable, "-m", "wynerkit", "run", str(TINY), "--out", str(blocker / "runs")]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == USAGE, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"{blocker} is a file, not a directory" in line


# -- every errno: one line naming the file ------------------------------------------------------------------

PLACE = [errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO]
PATH = [errno.ENOENT, errno.EEXIST, errno.EISDIR, errno.ENOTDIR]


@settings(max_examples=60, deadline=None)
@given(
    number=st.sampled_from(PLACE + PATH + [errno.EBUSY, errno.EMFILE]),
    name=st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s and "/" not in s),
)
def test_every_os_error_is_one_line_naming_its_file_with_the_right_exit_code(number, name):
    path = f"/nonexistent-wynerkit/{name}"
    line, code = os_error_line(OSError(number, os.strerror(number), path))
    assert "\n" not in line and "\r" not in line
    assert line.startswith((path, repr(path)))
    assert code == (USAGE if number in PATH else IO_ERROR)
