"""Fault injection: SIGKILL a run at a point hypothesis picks, resume it, and get the uninterrupted run's metrics.

``kill_point.py`` runs the real CLI in a child process that kills itself at the chosen moment (an
iteration, a checkpoint file half-written, a checkpoint about to be renamed into place, a copy to
``best``, a metrics line half-written); the resumed run must end with the same metrics as one that was
never killed, no leftovers, and every checkpoint intact.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_training import TINY, assert_same_metrics, metrics, start
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.rundir.checkpoint import BEST, DIGESTS, Checkpoint, step_checkpoints
from wynerkit.runs.training_run import train_run

CHECKPOINTS = "checkpoints"  # the run-directory layout users rely on
SETTINGS = ["train.max_steps=30", "train.checkpoint.every=10", "train.log_every=5"]
KILL_POINT = Path(__file__).with_name("kill_point.py")
CALLS = {"iteration": 30, "tensor-file": 18, "install": 4, "best-copy": 1, "metrics-line": 9}
"""How many times each moment comes in an uninterrupted run of SETTINGS (3 checkpoints of 6 files,
at least 4 renames into place, 9 metrics lines): the kill always lands inside the run."""

kill_points = st.sampled_from(sorted(CALLS)).flatmap(lambda m: st.tuples(st.just(m), st.integers(1, CALLS[m])))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, builtin_host) -> Path:
    run_dir, spec = start(tmp_path_factory.mktemp("reference"), builtin_host, *SETTINGS)
    train_run(run_dir, spec, builtin_host.registry)
    return run_dir


def killed_run(out: Path, moment: str, n: int) -> Path:
    command = [sys.executable, str(KILL_POINT), moment, str(n), "run", str(TINY), "--out", str(out)]
    for setting in SETTINGS:
        command += ["--set", setting]
    child = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    (run_dir,) = out.glob("tiny/*")
    assert not (run_dir / "summary.json").exists()
    return run_dir


@pytest.mark.slow
@settings(max_examples=2, deadline=None)
@given(kill=kill_points)
@example(kill=("iteration", 14))
@example(kill=("tensor-file", 9))
@example(kill=("install", 2))
@example(kill=("best-copy", 1))
@example(kill=("metrics-line", 9))
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_metrics(kill, reference, builtin_host, tmp_path_factory):
    moment, n = kill
    run_dir = killed_run(tmp_path_factory.mktemp("killed"), moment, n)

    result = CliRunner().invoke(build_app(builtin_host), ["run", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.stderr or "no checkpoint in" in result.stderr
    assert_same_metrics(metrics(run_dir), metrics(reference))

    directory = run_dir / CHECKPOINTS
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")]
    for path in [*step_checkpoints(directory), directory / BEST]:
        opened = Checkpoint.open(path)
        for name in opened.state[DIGESTS]:
            opened.tensors(name)  # every file matches its digest
    summary = json.loads((run_dir / "summary.json").read_text())
    assert Checkpoint.open(directory / BEST).step == summary["best"]["step"]
    assert summary["best"] == json.loads((reference / "summary.json").read_text())["best"]
