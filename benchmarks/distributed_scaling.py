"""Data-parallel scaling on one machine: 2 torchrun processes (gloo) against 1 process.

Trains ``specs/quickstart.yaml`` (embedded MNIST x SynDigits, ``cpu`` preset, global batch 64) for
``--steps`` steps three ways, each in a fresh process tree:

- ``1 process, T threads``: plain ``wynerkit run`` with every core (T = the machine's cores);
- ``1 process, 1 thread``: the per-process share of the distributed run;
- ``N processes, T/N threads each``: ``torchrun --standalone --nproc_per_node=N -m wynerkit run``.

Training throughput is steps x global batch / the training seconds in ``summary.json`` (the
training loop only: no start-up, figures or evaluation). Efficiency is the N-process throughput over
N times the 1-thread one (how well N workers of one thread each add up); speed-up is the N-process
throughput over the all-cores single process (what a user of this machine gains).

Writes ``benchmarks/results/distributed_scaling.json``. Run on an otherwise idle machine:

    python benchmarks/distributed_scaling.py [--steps 150] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from wynerkit.atomic import write_text_atomic

ROOT = Path(__file__).parent.parent
SPEC = ROOT / "specs" / "quickstart.yaml"


def train(launcher: list[str], steps: int, threads: int, out: Path) -> dict[str, Any]:
    """One run of the quickstart spec with ``launcher``; its throughput from summary.json."""
    sets = [f"train.max_steps={steps}", f"train.checkpoint.every={steps}", "train.log_every=50", "train.device=cpu"]
    command = [*launcher, "run", str(SPEC), "--out", str(out)]
    for setting in sets:
        command += ["--set", setting]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    batch = 64
    return {
        "threads_per_process": threads,
        "training_seconds": round(summary["seconds"], 2),
        "pairs_per_s": round(steps * batch / summary["seconds"], 1),
        "final_generator_loss": summary["final"].get("loss.generator"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    cores, n = os.cpu_count() or 1, args.processes
    single = [sys.executable, "-m", "wynerkit"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]
    with tempfile.TemporaryDirectory() as scratch:
        rows = {
            f"1 process, {cores} threads": {"processes": 1, **train(single, args.steps, cores, Path(scratch) / "a")},
            "1 process, 1 thread": {"processes": 1, **train(single, args.steps, 1, Path(scratch) / "b")},
            f"{n} processes, {max(1, cores // n)} thread(s) each": {
                "processes": n,
                **train([*torchrun, "-m", "wynerkit"], args.steps, max(1, cores // n), Path(scratch) / "c"),
            },
        }
    all_cores, one_thread, spread = (row["pairs_per_s"] for row in rows.values())
    result = {
        "machine": {"cpu_cores": cores, "torch": torch.__version__, "backend": "gloo (CPU)"},
        "settings": {
            "spec": str(SPEC.relative_to(ROOT)),
            "steps": args.steps,
            "global_batch": 64,
            "measure": "steps x global batch / training seconds of summary.json (loop only)",
        },
        "runs": rows,
        "efficiency": round(spread / (n * one_thread), 3),
        "speedup_over_all_cores_single_process": round(spread / all_cores, 3),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "distributed_scaling.json", json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
