"""Retrieval at Sketchy scale: chunked exact cosine kNN and metrics, time and peak memory.

75,000 queries against 73,000 gallery items (Sketchy Extended: 75,471 sketches, 73,002 photos), random
64-d unit vectors with 100 classes. Times, on the threads torch is given (run with OMP_NUM_THREADS=1
for one core):

- ``ranking``: ``ranking_scores`` (P@100, P@200, mAP, interpolated mAP from one full ranking per chunk),
  what the ``retrieval`` evaluator runs in category mode, in one call on every query if a probe on 1,280
  queries projects that to fit in ``--budget`` seconds, else on as many as fit (the rest extrapolated
  linearly, which is exact up to noise: every query costs the same, a sort of the whole gallery);
- ``instance``: ``match_ranks`` (acc@K) on ``--sample`` queries, extrapolated to all;
- ``nearest``: ``nearest`` (torch.topk, K=100) on ``--sample`` queries, extrapolated to all.

Peak memory is the process's peak resident set size (``resource.getrusage``), after a warm-up on a
small gallery (one-time costs such as BLAS buffers) and after each phase; the full ``N x M`` float32
similarity matrix, never built, is given for comparison. Writes ``benchmarks/results/retrieval_scale.json``.
Run from the repository root:

    OMP_NUM_THREADS=1 python benchmarks/retrieval_scale.py [--queries 75000] [--gallery 73000] [--budget 240]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wynerkit.atomic import write_json_atomic
from wynerkit_plugins.evaluators.retrieval_metrics import (
    DEFAULT_CHUNK,
    match_ranks,
    nearest,
    ranking_scores,
)

RESULTS = Path(__file__).parent / "results" / "retrieval_scale.json"
KS = (100, 200)
PROBE = 1280
MB = 1024 * 1024


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB, 1)


def unit_vectors(n: int, dim: int, generator: torch.Generator) -> Tensor:
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=generator), dim=1)


def time_ranking(
    queries: Tensor, gallery: Tensor, query_labels: Tensor, gallery_labels: Tensor, chunk: int, budget: float
) -> dict[str, Any]:
    """One ``ranking_scores`` call (the evaluator's pattern) on every query, or on as many as fit the budget.

    A first call on ``PROBE`` queries gives the time per query that decides how many to measure.
    """
    probe = min(PROBE, len(queries))
    start = time.perf_counter()
    ranking_scores(queries[:probe], gallery, query_labels[:probe], gallery_labels, KS, chunk)
    per_query = (time.perf_counter() - start) / probe
    measured = min(len(queries), max(probe, int(budget / per_query) // chunk * chunk))
    start = time.perf_counter()
    scores = ranking_scores(queries[:measured], gallery, query_labels[:measured], gallery_labels, KS, chunk)
    seconds = time.perf_counter() - start
    return {
        "probe_queries": probe,
        "probe_ms_per_query": round(1000 * per_query, 3),
        "queries_measured": measured,
        "seconds_measured": round(seconds, 1),
        "ms_per_query": round(1000 * seconds / measured, 3),
        "seconds_all_queries": round(seconds * len(queries) / measured, 1),
        "extrapolated": measured < len(queries),
        "metrics_on_measured_queries": {
            **{f"p@{k}": round(scores.mean_precision(k), 5) for k in KS},
            "map": round(scores.mean_average_precision(), 5),
            "map_interp": round(scores.mean_average_precision(interpolated=True), 5),
            "queries_without_relevant": scores.without_relevant,
        },
    }


def time_sample(run: Callable[[slice], object], sample: int, total: int) -> dict[str, Any]:
    start = time.perf_counter()
    run(slice(0, sample))
    seconds = time.perf_counter() - start
    return {
        "queries_measured": sample,
        "seconds_measured": round(seconds, 1),
        "ms_per_query": round(1000 * seconds / sample, 3),
        "seconds_all_queries": round(seconds * total / sample, 1),
        "extrapolated": sample < total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=75_000)
    parser.add_argument("--gallery", type=int, default=73_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK)
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for the ranking phase")
    parser.add_argument("--sample", type=int, default=5_000, help="queries timed by the instance and nearest phases")
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    queries, gallery = unit_vectors(args.queries, args.dim, generator), unit_vectors(args.gallery, args.dim, generator)
    query_labels = torch.randint(0, args.classes, (args.queries,), generator=generator)
    gallery_labels = torch.randint(0, args.classes, (args.gallery,), generator=generator)
    match = torch.randint(0, args.gallery, (args.queries,), generator=generator)
    chunk, sample = args.chunk_size, min(args.sample, args.queries)

    # warm up on a small gallery so one-time costs (BLAS buffers, lazy imports) are not counted as the chunks' memory
    ranking_scores(queries[:chunk], gallery[:1000], query_labels[:chunk], gallery_labels[:1000], KS, chunk)
    match_ranks(queries[:chunk], gallery[:1000], match[:chunk] % 1000, chunk)
    nearest(queries[:chunk], gallery[:1000], KS[0], chunk)
    memory: dict[str, float] = {"before_mb": peak_rss_mb()}
    ranking = time_ranking(queries, gallery, query_labels, gallery_labels, chunk, args.budget)
    memory["after_ranking_mb"] = peak_rss_mb()
    instance = time_sample(lambda rows: match_ranks(queries[rows], gallery, match[rows], chunk), sample, args.queries)
    memory["after_instance_mb"] = peak_rss_mb()
    top = time_sample(lambda rows: nearest(queries[rows], gallery, KS[0], chunk), sample, args.queries)
    memory["after_nearest_mb"] = peak_rss_mb()

    result = {
        "problem": {
            "queries": args.queries,
            "gallery": args.gallery,
            "dim": args.dim,
            "classes": args.classes,
            "ks": list(KS),
            "data": "random unit vectors, uniform random labels (seed 0): metrics sit at chance, about 1 / classes",
        },
        "chunk_size": chunk,
        "ranking": ranking,
        "instance_match_ranks": instance,
        "nearest_top100": top,
        "peak_rss": memory,
        "peak_rss_increase_by_ranking_mb": round(memory["after_ranking_mb"] - memory["before_mb"], 1),
        "full_similarity_matrix_mb": round(args.queries * args.gallery * 4 / MB, 1),
        "chunk_similarity_matrix_mb": round(chunk * args.gallery * 4 / MB, 1),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "torch": torch.__version__,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS, result)
    print(f"ranking: {ranking}\ninstance: {instance}\nnearest: {top}\npeak RSS: {memory}\n-> {RESULTS}")


if __name__ == "__main__":
    main()
