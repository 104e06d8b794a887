"""One process per run or sweep directory: a second process is refused naming the holder's pid,
and a holder killed with SIGKILL leaves no stale lock.

The holder is a real second process (it imports wynerkit, about 5 s), started once for the
refusal tests and once more for the kill test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wynerkit.rundir.lock import LOCK_FILE, DirectoryLocked, exclusive_lock
from wynerkit.sweeps.grid import Axis
from wynerkit.sweeps.plan import plan_sweep

ROOT = Path(__file__).parent.parent
TINY = ROOT / "tests" / "specs" / "tiny.yaml"
HOLDER = """
import sys, time
from contextlib import ExitStack
from pathlib import Path
from wynerkit.rundir.lock import exclusive_lock
with ExitStack() as stack:
    for directory in sys.argv[1:]:
        stack.enter_context(exclusive_lock(Path(directory)))
    print("held", flush=True)
    time.sleep(600)
"""


def start_holder(*directories: Path) -> subprocess.Popen[str]:
    """A process that holds the locks of ``directories`` until it is killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *map(str, directories)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n", "the holder failed to start"
    return holder


def refusal(directory: Path, pid: int) -> str:
    return (
        f"{directory}: in use by another wynerkit process (pid {pid}); "
        "wait for it to finish, or stop it, then try again"
    )


@dataclass(frozen=True)
class Held:
    pid: int
    run_dir: Path
    sweep_dir: Path
    free_sweep_dir: Path
    """A sweep directory whose only cell directory is held."""


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory, builtin_host) -> Iterator[Held]:
    root = tmp_path_factory.mktemp("locks")
    run_dir = root / "run"
    run_dir.mkdir()
    shutil.copy(TINY, run_dir / "spec.yaml")
    sweep_dir = root / "sweep"
    sweep_dir.mkdir()
    (cell,) = plan_sweep(TINY, builtin_host.registry, [Axis("seed", (0,))], [], []).cells
    cell_dir = root / "free-sweep" / "cells" / cell.cell.name
    cell_dir.mkdir(parents=True)
    holder = start_holder(run_dir, sweep_dir, cell_dir)
    try:
        yield Held(holder.pid, run_dir, sweep_dir, root / "free-sweep")
    finally:
        holder.kill()
        holder.wait()


def test_a_second_process_is_refused_naming_the_holders_pid(held):
    with pytest.raises(DirectoryLocked) as refused, exclusive_lock(held.run_dir):
        pass
    assert str(refused.value) == refusal(held.run_dir, held.pid)


def test_run_resume_exits_2_while_another_process_holds_the_run(cli, held):
    result = cli("run", "--resume", held.run_dir)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [refusal(held.run_dir, held.pid)]
    assert sorted(p.name for p in held.run_dir.iterdir()) == [LOCK_FILE, "spec.yaml"]  # nothing trained


def test_a_sweep_exits_2_while_another_process_holds_its_out(cli, held):
    result = cli("sweep", TINY, "--grid", "seed=0", "--out", held.sweep_dir)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [refusal(held.sweep_dir, held.pid)]
    assert [p.name for p in held.sweep_dir.iterdir()] == [LOCK_FILE]


def test_a_sweep_does_not_train_a_cell_another_process_holds(cli, held):
    result = cli("sweep", TINY, "--grid", "seed=0", "--out", held.free_sweep_dir)
    assert result.exit_code == 2, result.output
    (cell_dir,) = (held.free_sweep_dir / "cells").iterdir()
    assert result.stderr.strip().splitlines()[-1] == f"cell 1/1 seed=0: {refusal(cell_dir, held.pid)}"
    assert not (cell_dir / "metrics.jsonl").exists()


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(tmp_path):
    holder = start_holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait() == -signal.SIGKILL
    assert (tmp_path / LOCK_FILE).read_text() == f"{holder.pid}\n"  # the file outlives it; the lock does not
    with exclusive_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_the_lock_is_held_for_the_block_only(tmp_path):
    with exclusive_lock(tmp_path), pytest.raises(DirectoryLocked, match=f"pid {os.getpid()}"), exclusive_lock(tmp_path):
        pass
    with exclusive_lock(tmp_path):  # released when the block ended
        pass
