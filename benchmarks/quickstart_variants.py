"""How much trained quickstart variants use the common code z: diagnostics read from finished runs.

For each run directory given, loads the EMA model of its newest checkpoint and measures on 512
test pairs spread over the test split:
- ``z_std``: mean per-dimension std of q(z|x), q(z|y), q(z|x,y) (the prior has 1);
- ``y_spread_over_z`` / ``y_spread_over_v``: mean pixel std of y(z, v) when z = q(z|x) varies over
  the test x with v fixed, and when v varies over prior draws with z fixed; likewise for x. A
  conditional model that carries the content through z has spread over z comparable to the
  spread over the local code; one that ignores z has almost none;
- the run's overrides, steps, seconds and its last logged critic accuracies.
Writes ``benchmarks/results/quickstart_variants.json``:

    python benchmarks/quickstart_variants.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from wynerkit.data.loading import evenly_spaced, fetch
from wynerkit.evaluation.trained_run import open_trained
from wynerkit.plugins import get_host

RESULTS = Path(__file__).parent / "results" / "quickstart_variants.json"
PAIRS = 512


def overrides(run_dir: Path) -> list[str]:
    header = (run_dir / "spec.yaml").read_text().splitlines()[:3]
    line = next((h for h in header if h.startswith("# with ")), "")
    return [part.strip() for part in line.removeprefix("# with ").split("--set ") if part.strip()]


@torch.no_grad()
def diagnose(run_dir: Path) -> dict[str, object]:
    parts = open_trained(run_dir, get_host().registry)
    model, test = parts.model, parts.data.split("test")
    batch = fetch(test, evenly_spaced(test, PAIRS))
    x, y = batch["x"].to(parts.device), batch["y"].to(parts.device)
    generator = torch.Generator(parts.device).manual_seed(0)
    zx, zy, zxy = model.encode_z(x=x), model.encode_z(y=y), model.encode_z(x=x, y=y)
    n = len(x)

    def prior(name: str, rows: int) -> torch.Tensor:
        return torch.randn(rows, model.latent[name], generator=generator, device=parts.device)

    v_fixed, u_fixed = prior("v", 1).expand(n, -1), prior("u", 1).expand(n, -1)
    summary = json.loads((run_dir / "summary.json").read_text())
    final = summary["final"]
    return {
        "run": run_dir.name,
        "overrides": overrides(run_dir),
        "steps": summary["steps"],
        "training_seconds": round(summary["seconds"], 1),
        "z_std": {
            "q(z|x)": zx.std(0).mean().item(),
            "q(z|y)": zy.std(0).mean().item(),
            "q(z|x,y)": zxy.std(0).mean().item(),
        },
        "y_spread_over_z": model.decode(zx, v=v_fixed).y.std(0).mean().item(),
        "y_spread_over_v": model.decode(zx[:1].expand(n, -1), v=prior("v", n)).y.std(0).mean().item(),
        "x_spread_over_z": model.decode(zy, u=u_fixed).x.std(0).mean().item(),
        "x_spread_over_u": model.decode(zy[:1].expand(n, -1), u=prior("u", n)).x.std(0).mean().item(),
        "final": {k: round(v, 4) for k, v in final.items() if k.startswith(("accuracy.", "term."))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    rows = [diagnose(run) for run in args.runs]
    result = {
        "what": "use of the common code z by quickstart variants (MNIST x SynDigits; SynDigits stands in for SVHN)",
        "pairs": PAIRS,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
