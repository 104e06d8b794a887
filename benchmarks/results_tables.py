"""Markdown tables of the issue-16 results (mean ± std over seeds) and each comparison's verdict.

Reads ``addone_sweep.json``, ``zeroshot_digits.json``, ``qmul_retrieval.json`` and ``iiae_budget*.json``
from ``--results`` (default ``benchmarks/results``) and prints the tables docs/results.md shows. A comparison of two
rows (say the full model against a baseline) is **ahead** or **behind** when the difference of their
means is more than twice its standard error, ``2 * sqrt(s1^2 / n1 + s2^2 / n2)`` (s: the sample std over
seeds), and **within noise** otherwise; rows without seeds (the nearest-neighbour baselines) have no
spread, so only the model's own spread counts.

    python benchmarks/results_tables.py [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def cell(entry: Mapping[str, Any], metric: str) -> str:
    value = entry.get(metric)
    if value is None:
        return "-"
    if entry["n"] > 1:
        return f"{value['mean']:.3f} ± {value['std']:.3f}"
    return f"{value['mean']:.3f}"


def table(summary: Sequence[Mapping[str, Any]], labels: Sequence[str], metrics: Sequence[str]) -> str:
    lines = [
        "| " + " | ".join([*labels, "seeds", *metrics]) + " |",
        "|" + "---|" * (len(labels) + 1 + len(metrics)),
    ]
    for entry in summary:
        names = ["-" if entry.get(label) is None else str(entry[label]) for label in labels]
        lines.append("| " + " | ".join([*names, str(entry["n"]), *(cell(entry, m) for m in metrics)]) + " |")
    return "\n".join(lines)


def verdict(a: Mapping[str, Any], b: Mapping[str, Any], metric: str, *, higher_is_better: bool = True) -> str:
    """Whether row ``a`` is ahead of, behind or within noise of row ``b`` on ``metric`` (see the module doc)."""
    ma, mb = a[metric], b[metric]
    diff = ma["mean"] - mb["mean"]
    error = math.sqrt(ma["std"] ** 2 / a["n"] + mb["std"] ** 2 / b["n"])
    ahead = "ahead" if (diff > 0) == higher_is_better else "behind"
    word = "within noise" if abs(diff) <= 2 * error else ahead
    return f"{word} ({ma['mean']:.3f} vs {mb['mean']:.3f}, difference {diff:+.3f}, 2 SE {2 * error:.3f})"


def find(summary: Sequence[Mapping[str, Any]], **where: Any) -> Mapping[str, Any]:
    for entry in summary:
        if all(entry.get(key) == value for key, value in where.items()):
            return entry
    raise KeyError(f"no summary row with {where}")


def addone_section(addone: Mapping[str, Any]) -> None:
    metrics = ["coherence.x2y", "coherence.y2x", "coherence.joint", "fd.x2y", "fd.y2x", "fd.joint"]
    ordered = sorted(addone["summary"], key=lambda e: (e["model"] != "variational-wyner", e["lambda_ci"] or 0.0))
    print("## Add-one\n\n" + table(ordered, ["model", "lambda_ci"], metrics) + "\n")
    full = find(addone["summary"], model="variational-wyner", lambda_ci=1.0)
    for other in (
        {"model": "variational-wyner", "lambda_ci": 0.0},
        {"model": "wyner-degenerate-local"},
        {"model": "iiae"},
    ):
        against = find(addone["summary"], **other)
        for metric in metrics:
            better = not metric.startswith("fd")
            label = " ".join(f"{value}" if key == "model" else f"lambda_CI {value}" for key, value in other.items())
            print(f"- lambda_CI 1 against {label}, {metric}: {verdict(full, against, metric, higher_is_better=better)}")


def zeroshot_section(zeroshot: Mapping[str, Any]) -> None:
    metrics = ["retrieval.p@100", "retrieval.map"]
    print("\n## Zero-shot digits\n\n" + table(zeroshot["summary"], ["model"], metrics) + "\n")
    model = find(zeroshot["summary"], model="variational-wyner")
    for other in ("wyner-degenerate-local", "iiae", "pixel-nn", "pca-nn"):
        against = find(zeroshot["summary"], model=other)
        for metric in metrics:
            print(f"- variational-wyner against {other}, {metric}: {verdict(model, against, metric)}")


def qmul_section(qmul: Mapping[str, Any]) -> None:
    metrics = ["retrieval.acc@1", "retrieval.acc@10"]
    print("\n## QMUL\n\n" + table(qmul["summary"], ["dataset", "model"], metrics) + "\n")
    for entry in qmul["summary"]:
        if entry["n"] > 1:  # the trained models (the nearest-neighbour rows have no seeds)
            floor = find(qmul["summary"], dataset=entry["dataset"], model="blurred-pixel-nn")
            found = verdict(entry, floor, "retrieval.acc@10")
            print(f"- {entry['dataset']}, {entry['model']} against the blurred-pixel floor, acc@10: {found}")


def iiae_budget_section(budget: Mapping[str, Any], benchmark: Mapping[str, Any]) -> None:
    """IIAE with one loss weight varied (``iiae_budget.py``) against the full model of the same benchmark."""
    task, param = budget["task"], budget["param"]
    metrics = [m for m in budget["summary"][0] if isinstance(budget["summary"][0][m], dict) and m != "seconds"]
    print(f"\n## IIAE's {param} at the {task} budget\n")
    print(table(budget["summary"], ["model", param], metrics) + "\n")
    where = {"model": "variational-wyner"} | ({"lambda_ci": 1.0} if task == "addone" else {})
    model = find(benchmark["summary"], **where)
    for entry in budget["summary"]:
        for metric in metrics:
            found = verdict(model, entry, metric, higher_is_better=not metric.startswith("fd"))
            print(f"- variational-wyner against iiae with {param} {entry[param]}, {metric}: {found}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sections = {"addone_sweep": addone_section, "zeroshot_digits": zeroshot_section, "qmul_retrieval": qmul_section}
    for name, section in sections.items():
        path = args.results / f"{name}.json"
        result = json.loads(path.read_text()) if path.is_file() else {}
        if "summary" in result:
            section(result)
        else:
            print(f"\n({name}.json has no per-seed summary yet: rerun its benchmark)")
    for budget, benchmark in (("iiae_budget", "zeroshot_digits"), ("iiae_budget_addone", "addone_sweep")):
        paths = [args.results / f"{name}.json" for name in (budget, benchmark)]
        if all(path.is_file() for path in paths):
            iiae_budget_section(*(json.loads(path.read_text()) for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
