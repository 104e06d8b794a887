"""docs/plugins.md's "Your first dataset plugin in 15 minutes" cannot drift from the example plugin.

Every python, toml and yaml block of the walkthrough must be a verbatim run of lines of the file
named above it. Its shell commands are run as written, in order, in an offline install of the
example (``example_install``), with two stand-ins: ``pip install`` is that install, and the
backgrounded ``python -m http.server`` is the same stdlib handler served from this process on a
free port (the data source's mirror is pointed at it). ``pytest tests`` is run by
tests/test_example_plugin.py. Cost: an offline pip build and eight subprocesses that each import
torch, one of them a 3-step run, all sharing one install (expect under a minute on an idle machine).
"""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from example_install import ROOT, install_example, run, shown

SECTION = "## Your first dataset plugin in 15 minutes"
CODE_LANGUAGES = ("python", "toml", "yaml")
BLOCK = re.compile(r"^(?:`(?P<path>[^`\n]+)`:\n\n)?```(?P<language>\w*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
COMMANDS = (
    "cd examples/wynerkit-example-plugin",
    "pip install -e .",
    "wynerkit plugins list",
    "python -m wynerkit_example.publish_shapes mirror/shapes-pairs",
    "python -m http.server 8000 --bind 127.0.0.1 --directory mirror &",
    "wynerkit data info --root data",
    "wynerkit data download shapes-pairs --root data",
    "wynerkit data verify shapes-pairs --root data",
    "wynerkit spec validate shapes-spec.yaml",
    "wynerkit run shapes-spec.yaml --out runs --set data.root=data --set train.max_steps=3",
    "pip install pytest",
    "pytest tests",
)
STAND_INS = ("cd ", "pip install", "python -m http.server", "pytest ")
"""Commands this test does not run as written (see the module docstring)."""
MISSPELT = "data.roots: unknown field 'roots' (did you mean 'root'?); allowed fields: name, root"


@dataclass(frozen=True)
class Block:
    path: str | None
    language: str
    body: str


def walkthrough() -> str:
    text = (ROOT / "docs" / "plugins.md").read_text()
    start = text.index(SECTION)
    return text[start : text.find("\n## ", start + len(SECTION))]


def blocks(language: str | None = None) -> list[Block]:
    found = [Block(m["path"], m["language"], m["body"]) for m in BLOCK.finditer(walkthrough())]
    return [b for b in found if language is None or b.language == language]


def shell_commands() -> list[str]:
    return [line.strip() for b in blocks("bash") for line in b.body.splitlines() if line.strip()]


def test_every_code_block_is_verbatim_from_the_file_named_above_it() -> None:
    code = [b for b in blocks() if b.language in CODE_LANGUAGES]
    assert len(code) >= 8, "the walkthrough should quote the example's code"
    for block in code:
        assert block.path, f"a {block.language} block has no file path above it:\n{block.body[:200]}"
        assert block.path.startswith("examples/wynerkit-example-plugin/"), block.path
        text = (ROOT / block.path).read_text()
        assert f"\n{block.body}" in f"\n{text}", f"this block is not verbatim from {block.path}:\n{block.body}"
    quoted = {b.path for b in code}
    for part in ("pyproject.toml", "shapes-spec.yaml", "shapes_pairs.py", "shapes_source.py", "__init__.py"):
        assert any(path.endswith(part) for path in quoted), f"the walkthrough does not quote {part}"


def test_the_walkthrough_gives_exactly_the_commands_this_test_runs() -> None:
    assert shell_commands() == list(COMMANDS)


@dataclass(frozen=True)
class Walk:
    site: Path
    """Where the example is installed."""
    folder: Path
    """The example's folder (a copy): the cwd of every command after ``cd``."""
    results: dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    """Every command of the walkthrough, run in order; their results by command."""
    site, folder = install_example(tmp_path_factory.mktemp("example-plugin"))
    (folder / "mirror").mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder / "mirror")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"WYNERKIT_EXAMPLE_MIRROR": f"http://127.0.0.1:{server.server_address[1]}/shapes-pairs", "COLUMNS": "1000"}
    results = {}
    for command in COMMANDS:
        if command.startswith(STAND_INS):
            continue
        program, *args = shlex.split(command)
        python_args = ["-m", "wynerkit", *args] if program == "wynerkit" else args
        results[command] = run(python_args, site, cwd=folder, **env)
    yield Walk(site, folder, results)
    server.shutdown()
    server.server_close()


def result_of(walk: Walk, command: str) -> subprocess.CompletedProcess[str]:
    result = walk.results[command]
    assert result.returncode == 0, f"{command}\n{shown(result)}"
    return result


@pytest.mark.slow  # an offline install and CLI subprocesses; CI runs the slow tests too
def test_plugins_list_shows_the_dataset_and_its_data_source(walk: Walk) -> None:
    lines = result_of(walk, "wynerkit plugins list").stdout.splitlines()
    rows = [re.split(r"[│|]", line) for line in lines]  # rich draws ASCII bars where the encoding is not UTF-8
    cells = {tuple(cell.strip() for cell in row[1:4]) for row in rows if len(row) > 4}
    assert {("dataset", "shapes-pairs", "example"), ("data_source", "shapes-pairs", "example")} <= cells


@pytest.mark.slow  # an offline install and CLI subprocesses; CI runs the slow tests too
def test_the_published_files_download_and_verify_as_the_walkthrough_shows(walk: Walk) -> None:
    published = result_of(walk, "python -m wynerkit_example.publish_shapes mirror/shapes-pairs").stdout.split()
    assert published == [
        f"mirror/shapes-pairs/{n}" for n in ("train.pgm.gz", "valid.pgm.gz", "test.pgm.gz", "labels.json")
    ]
    assert "shapes-pairs" in result_of(walk, "wynerkit data info --root data").stdout
    downloaded = result_of(walk, "wynerkit data download shapes-pairs --root data")
    stored = walk.folder / "data" / "example" / "shapes"
    for name in published:
        assert (stored / Path(name).name).read_bytes() == (walk.folder / name).read_bytes()
    (expected,) = [b.body.strip() for b in blocks("text") if "verified" in b.body]
    assert downloaded.stdout.strip().splitlines()[-1] == expected
    assert result_of(walk, "wynerkit data verify shapes-pairs --root data").stdout.strip() == expected


@pytest.mark.slow  # an offline install and CLI subprocesses; CI runs the slow tests too
def test_the_spec_is_valid_and_a_misspelt_field_reads_as_the_walkthrough_says(walk: Walk) -> None:
    assert result_of(walk, "wynerkit spec validate shapes-spec.yaml").stdout.strip() == "shapes-spec.yaml: valid"
    validate = ["-m", "wynerkit", "spec", "validate", "shapes-spec.yaml", "--set", "data.roots=data"]
    misspelt = run(validate, walk.site, walk.folder)
    assert misspelt.returncode == 2, shown(misspelt)
    assert f"--set data.roots=data: {MISSPELT}" in misspelt.stderr, shown(misspelt)
    assert MISSPELT in walkthrough()


@pytest.mark.slow  # an offline install and CLI subprocesses; CI runs the slow tests too
def test_three_steps_run_and_leave_metrics_checkpoints_and_a_summary(walk: Walk) -> None:
    ran = result_of(walk, "wynerkit run shapes-spec.yaml --out runs --set data.root=data --set train.max_steps=3")
    run_dir = walk.folder / ran.stdout.strip().splitlines()[-1]
    assert run_dir.parent == walk.folder / "runs" / "shapes-wyner", ran.stdout
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps
    assert max(steps) == 3
    assert (run_dir / "checkpoints" / "step-00000003" / "model.safetensors").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["steps"] == 3
    assert summary["data"]["sizes"] == {"train": 84, "valid": 12, "test": 12}, "describe() goes into the summary"
    recon = {key: value for key, value in summary.items() if key.startswith("recon.")}
    assert {"recon.x2y", "recon.y2x"} <= set(recon), sorted(summary)
    assert all(math.isfinite(value) and value >= 0 for value in recon.values()), recon
