"""Data-parallel training with 2 CPU processes over gloo: ranks stay identical, and match one process.

The first test starts two processes itself (``torch.multiprocessing``) and keeps every rank's final
weights; the second runs the real command line under ``torchrun`` and compares rank 0's checkpoint
with a single-process run of the same spec and global batch.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from test_training import assert_same_metrics, metrics, wait_for_checkpoint
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.plugins import PluginHost, discover
from wynerkit.runs.create import create_run_dir
from wynerkit.runs.training_run import train_run
from wynerkit.spec.loading import load_spec
from wynerkit.training.assembly import assemble
from wynerkit.training.distributed import Cluster
from wynerkit.training.trainer import Trainer

TINY = Path(__file__).parent / "specs" / "tiny.yaml"
# A deterministic objective (encoders and decoders are deterministic maps without noise_dim) and no
# BatchNorm (on CPU each process normalises its own shard): one process and two must then agree to
# float rounding. The full objective draws its noise per rank.
DETERMINISTIC = [
    "objective.terms={R_xy2x: 1, R_xy2y: 1, R_x2x: 1, R_y2y: 1}",
    "estimator=null",
    "model.x.batch_norm=false",
    "model.y.batch_norm=false",
    "train.precision=fp32",  # auto would pick bf16 on a CPU with native bf16, whose rounding differs per batch split
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "wynerkit",
        *args,
    ]


def gloo_threads() -> list[str]:
    """The names of this process's gloo threads (its workers and its TCP loop), from /proc (Linux)."""
    names = (task.joinpath("comm").read_text().strip() for task in Path("/proc/self/task").iterdir())
    return sorted(name for name in names if "gloo" in name)


def train_rank(rank: int, world: int, port: int, overrides: list[str], run_dir: str, out: str) -> None:
    """One rank: join the group, train the tiny spec, save its model and critic weights and its gloo threads."""
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    host = PluginHost.load(discover(builtin_only=True), blocked=())
    spec = load_spec(TINY, host.registry, overrides).spec
    cluster = Cluster.from_env("cpu")
    try:
        trainer = Trainer(assemble(spec, host.registry), Path(run_dir), cluster)
        trainer.fit()
        weights = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
        if trainer.critic is not None:
            weights.update({f"critic.{k}": v for k, v in trainer.critic.state_dict().items()})
        save_file({k: v.contiguous() for k, v in weights.items()}, f"{out}/rank{rank}.safetensors")
        while_open = gloo_threads()
    finally:
        cluster.close()
    threads = {"while_open": while_open, "after_close": gloo_threads()}
    Path(out, f"rank{rank}.threads.json").write_text(json.dumps(threads))


def test_two_gloo_ranks_keep_identical_parameters_with_the_full_objective(tmp_path, builtin_host):
    overrides = ["train.max_steps=12", "train.checkpoint.every=6"]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    mp.spawn(train_rank, args=(2, free_port(), overrides, str(run_dir), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert rank0.keys() == rank1.keys() and any(k.startswith("critic.") for k in rank0)
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), f"{name} differs between the ranks"
    # rank 0 alone wrote the checkpoints and the metrics, one record per log step
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best", "step-00000006", "step-00000012"]
    logged = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert sum('"loss.generator"' in line for line in logged) == 3  # steps 5, 10, 12
    # closing the cluster ends gloo's threads: left to the interpreter's teardown they aborted a rank at exit
    for rank in (0, 1):
        threads = json.loads((tmp_path / f"rank{rank}.threads.json").read_text())
        assert threads["while_open"], "the check must see gloo's threads while the group is open"
        assert threads["after_close"] == [], f"rank {rank}: {threads['after_close']} outlive Cluster.close()"


def test_torchrun_training_matches_one_process_with_the_same_global_batch(tmp_path, builtin_host):
    overrides = [*DETERMINISTIC, "train.max_steps=10", "train.checkpoint.every=10"]
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY.read_text())
    command = torchrun("run", str(spec), "--out", str(tmp_path / "two"))
    for override in overrides:
        command += ["--set", override]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    two = Path(done.stdout.strip().splitlines()[-1])
    assert done.stdout.strip().splitlines() == [str(two)], "only rank 0 prints the run directory"

    loaded = load_spec(spec, builtin_host.registry, overrides)
    one = create_run_dir(tmp_path / "one", loaded.spec, loaded.source, builtin_host)
    train_run(one, loaded.spec, builtin_host.registry)
    final = "checkpoints/step-00000010/model.safetensors"
    a, b = load_file(one / final), load_file(two / final)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=f"{name}")
    assert json.loads((two / "summary.json").read_text())["processes"] == 2


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: Linux)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def wait_until_gone(pids: list[int], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() and "Z" not in status(pid) for pid in pids):
        assert time.monotonic() < deadline, "killed workers are still running"
        time.sleep(0.05)


def status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


@pytest.mark.slow  # three torchrun launches, one killed; CI runs the slow tests too
def test_a_killed_torchrun_run_resumes_under_torchrun_like_an_uninterrupted_one(tmp_path, builtin_host):
    settings = ["train.max_steps=400", "train.checkpoint.every=13", "train.log_every=5"]
    sets = [arg for setting in settings for arg in ("--set", setting)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = subprocess.run(
        torchrun("run", str(TINY), "--out", str(tmp_path / "reference"), *sets),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    reference_dir = Path(reference.stdout.strip().splitlines()[-1])

    killed = subprocess.Popen(
        torchrun("run", str(TINY), "--out", str(tmp_path / "killed"), *sets),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        run_dir = wait_for_checkpoint(tmp_path / "killed", killed)
        time.sleep(0.1)  # on past the checkpoint, mid-epoch
    finally:
        workers = descendants(killed.pid)  # torchrun starts its workers in sessions of their own
        for pid in [killed.pid, *workers]:
            os.kill(pid, signal.SIGKILL)
        killed.wait()
        wait_until_gone(workers)
    assert not (run_dir / "summary.json").exists(), "the run finished before the kill; make it longer"

    resumed = subprocess.run(
        torchrun("run", "--resume", str(run_dir)), capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_from = json.loads((run_dir / "summary.json").read_text())["resumed_from_step"]
    assert 0 < resumed_from < 400 and resumed_from % 13 == 0
    assert_same_metrics(metrics(run_dir), metrics(reference_dir))

    # one process cannot continue what two started (their random streams are per process)
    alone = CliRunner().invoke(build_app(builtin_host), ["run", "--resume", str(run_dir)])
    assert alone.exit_code == 2
    assert "written by 2 training process(es), resumed with 1" in alone.stderr
