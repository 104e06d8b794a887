"""Quickstart wall time: `wynerkit run specs/quickstart.yaml` end to end in a fresh process.

Writes ``benchmarks/results/quickstart.json`` (wall time, steps, pairs/s, the last logged metrics)
and copies the conditional-samples figure to ``docs/quickstart-conditional.png``. Run from the
repository root on an otherwise idle machine:

    python benchmarks/quickstart.py

Target (issue 4): done in <= 10 minutes on 2 CPU cores, figures showing the add-one relation.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "quickstart.json"
FIGURE = ROOT / "docs" / "quickstart-conditional.png"


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "wynerkit", "run", str(ROOT / "specs" / "quickstart.yaml"), "--out", out]
        started = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
        run_dir = Path(proc.stdout.strip().splitlines()[-1])
        summary = json.loads((run_dir / "summary.json").read_text())
        shutil.copyfile(run_dir / "figures" / "conditional.png", FIGURE)
    batch = 64
    result = {
        "what": "wynerkit run specs/quickstart.yaml in a fresh process (import, data, training, figures)",
        "machine": machine(),
        "wall_seconds": round(wall, 1),
        "training_seconds": round(summary["seconds"], 1),
        "steps": summary["steps"],
        "epochs": round(summary["epochs"], 2),
        "train_pairs_per_second": round(summary["steps"] * batch / summary["seconds"], 1),
        "data": summary["data"]["name"],
        "stand_in": "SynDigits replaces SVHN (generated digits; see docs/data.md)",
        "final_metrics": summary["final"],
        "valid_loss": summary["valid.loss"],
        "target_wall_seconds": 600,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
