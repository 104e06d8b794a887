"""Real entry points of a third-party package cannot take the CLI down or replace a built-in plugin.

A fake installed distribution (``acme-wynerkit``: a ``.dist-info`` folder and two modules) is put
on PYTHONPATH of subprocesses, so discovery reads real package metadata. One entry point calls
``sys.exit(3)`` at import; the other is named ``retrieval`` like the built-in plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wynerkit.plugins import BLOCK_ENV

ACME_RETRIEVAL = """
from wynerkit import hookimpl


def make_acme_pairs(params, context):
    \"\"\"acme's own pairs.\"\"\"


@hookimpl
def wynerkit_register_datasets(register):
    register("acme-pairs", make_acme_pairs)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    info = site / "acme_wynerkit-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme_wynerkit\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[wynerkit]\nretrieval = acme_retrieval\nexiter = acme_exiter\n")
    (site / "acme_retrieval.py").write_text(ACME_RETRIEVAL)
    (site / "acme_exiter.py").write_text("import sys\n\nsys.exit(3)\n")
    return site


def wynerkit(site: Path, *args: str, block: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, BLOCK_ENV: block, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "wynerkit", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_an_exiting_plugin_and_a_name_clash_are_warnings_and_the_builtin_stays(site):
    result = wynerkit(site, "retrieve", "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: python -m wynerkit retrieve" in result.stdout  # the built-in retrieval plugin's command
    assert result.stderr.splitlines() == [
        "wynerkit: warning: plugin 'exiter' failed to import: SystemExit: 3 "
        f"(skipped; silence this with {BLOCK_ENV}=exiter)",
        "wynerkit: warning: plugin 'retrieval' of package 'acme-wynerkit' has the same name as the built-in plugin "
        "'retrieval' of package 'wynerkit', which is kept; to use this one instead, set "
        f"{BLOCK_ENV}=wynerkit:retrieval (skipped; silence this with {BLOCK_ENV}=acme-wynerkit:retrieval)",
    ]


def test_blocking_the_builtin_by_package_lets_the_third_party_plugin_load(site):
    result = wynerkit(site, "plugins", "list", "--json", block="exiter,wynerkit:retrieval")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    plugin_of = {(row["kind"], row["name"]): row["plugin"] for row in json.loads(result.stdout)}
    assert plugin_of[("dataset", "acme-pairs")] == "retrieval"
    assert ("evaluator", "retrieval") not in plugin_of and ("evaluator", "coherence") in plugin_of
