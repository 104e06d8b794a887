"""The command line: plugins, spec validate/schema, run directories, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

import wynerkit
from wynerkit.spec.loading import load_spec

ROOT = Path(__file__).parent.parent
TINY = ROOT / "tests" / "specs" / "tiny.yaml"


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"wynerkit {wynerkit.__version__}"


def test_plugins_list_json_names_every_component_with_its_kind(cli, builtin_host):
    result = cli("plugins", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {(r["name"], r["kind"]) for r in rows} == {(c.name, c.kind) for c in builtin_host.registry}
    assert {"name", "kind", "plugin", "version"} <= set(rows[0])
    assert ("variational-wyner", "model") in {(r["name"], r["kind"]) for r in rows}


def test_plugins_list_table(cli):
    result = cli("plugins", "list")
    assert result.exit_code == 0 and "adversarial-js" in result.stdout and "estimator" in result.stdout


def test_spec_validate_good_and_bad(cli, tmp_path):
    assert cli("spec", "validate", TINY).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("embed: 16", "embeddd: 16"))
    result = cli("spec", "validate", bad)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{bad}:10:") and ": estimator.embeddd: unknown field" in line


def test_spec_schema_is_json_schema(cli):
    result = cli("spec", "schema")
    schema = json.loads(result.stdout)
    assert result.exit_code == 0 and schema["title"] == "RunSpec" and "model" in schema["required"]


def test_run_creates_the_run_directory(cli, tmp_path, builtin_host):
    result = cli("run", TINY, "--out", tmp_path / "runs", "--set", "train.max_steps=2")
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "runs" / "tiny"
    stamp, digest = run_dir.name.rsplit("-", 1)
    assert len(digest) == 8 and len(stamp) == len("20261123-201500")
    resolved = json.loads((run_dir / "spec.resolved.json").read_text())
    assert resolved["train"]["max_steps"] == 2 and resolved["train"]["batch_size"] == 32
    # spec.yaml is the spec as it ran: validating it again gives the same resolved spec
    again = load_spec(run_dir / "spec.yaml", builtin_host.registry).spec.model_dump(mode="json")
    assert again == resolved
    assert "--set train.max_steps=2" in (run_dir / "spec.yaml").read_text()
    env = json.loads((run_dir / "env.json").read_text())
    assert env["wynerkit"] == wynerkit.__version__ and env["python"].count(".") == 2 and env["torch"]
    assert {p["name"] for p in env["plugins"]} == {p.name for p in builtin_host.plugins}
    assert all(p["version"] for p in env["plugins"])


def test_two_runs_never_share_a_directory(cli, tmp_path):
    first = cli("run", TINY, "--out", tmp_path, "--set", "train.max_steps=1").stdout.strip().splitlines()[-1]
    second = cli("run", TINY, "--out", tmp_path, "--set", "train.max_steps=1").stdout.strip().splitlines()[-1]
    assert first != second and Path(first).is_dir() and Path(second).is_dir()


def test_run_refuses_an_out_that_is_a_file(cli, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    result = cli("run", TINY, "--out", target)
    assert result.exit_code == 2 and "is a file, not a directory" in result.stderr
    assert target.read_text() == "keep me"


def test_bad_input_exits_2_without_traceback_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "data": {"name": "nope"}, "model": {"name": "variational-wyner"}}))
    env = {**os.environ, "WYNERKIT_BLOCK_PLUGINS": ""}
    for args in (["spec", "validate", str(bad)], ["run", str(tmp_path / "missing.yaml")]):
        proc = subprocess.run([sys.executable, "-m", "wynerkit", *args], capture_output=True, text=True, env=env)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.strip()
        for line in proc.stderr.strip().splitlines():
            assert line.startswith(str(tmp_path)), line
