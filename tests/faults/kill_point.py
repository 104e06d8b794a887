"""Run ``wynerkit`` and SIGKILL it at one chosen point: ``python kill_point.py MOMENT N wynerkit-args...``.

The moments (each counted from 1 over the whole run):
  iteration         the start of training iteration N (mid-epoch, between checkpoints)
  tensor-file       checkpoint file N being written (``.tmp-step-*`` left half-written)
  install           just before rename N of a finished checkpoint (``step-*`` or ``best``) into place
  best-copy         just before the N-th copy of a checkpoint to ``best`` (a new step without its best)
  metrics-line      the middle of ``metrics.jsonl`` line N (a torn last line)

Nothing in wynerkit knows about this: the wrappers are installed from outside, then the CLI runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from wynerkit.cli import app
from wynerkit.rundir import checkpoint, metrics_log
from wynerkit.training import trainer


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def on_call(n: int, original: Callable[..., Any], before: Callable[..., None]) -> Callable[..., Any]:
    """``original``, with ``before(*args)`` run on its n-th call (``before`` kills the process)."""
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == n:
            before(*args, **kwargs)
        return original(*args, **kwargs)

    return wrapper


def half_a_line(log: metrics_log.MetricsLog, record: dict[str, Any]) -> None:
    line = json.dumps(record)
    with log.path.open("a", encoding="utf-8") as f:
        f.write(line[: len(line) // 2])
    die()


def half_a_file(tensors: Any, path: Any) -> None:
    path.write_bytes(b"\0" * 100)
    die()


def install(moment: str, n: int) -> None:
    if moment == "iteration":
        trainer.Trainer.iteration = on_call(n, trainer.Trainer.iteration, lambda *a, **k: die())
    elif moment == "tensor-file":
        checkpoint.save_tensors = on_call(n, checkpoint.save_tensors, half_a_file)
    elif moment == "install":
        checkpoint._install = on_call(n, checkpoint._install, lambda *a: die())
    elif moment == "best-copy":
        trainer.copy_checkpoint = on_call(n, trainer.copy_checkpoint, lambda *a: die())
    elif moment == "metrics-line":
        metrics_log.MetricsLog.write = on_call(n, metrics_log.MetricsLog.write, half_a_line)
    else:
        raise SystemExit(f"unknown moment {moment}")


if __name__ == "__main__":
    install(sys.argv[1], int(sys.argv[2]))
    sys.argv = ["wynerkit", *sys.argv[3:]]
    app.main()
