"""Exact cosine retrieval metrics, computed a chunk of queries at a time.

Pure functions on tensors: ``queries`` ``[N, D]`` are ranked against ``gallery`` ``[M, D]``.

- **Similarity**: cosine, ``(q . g) / (|q| |g|)``, in float32 (inputs of other dtypes are cast). A
  zero vector has similarity 0 with everything. The dot products come from one matrix product per
  chunk and are then scaled item by item, so a similarity depends only on its two vectors (and the
  matrix product's summation order): integer-valued embeddings give exactly the same similarities
  whatever the chunk size.
- **Ranking and ties**: by similarity, highest first; equal similarities are ordered by gallery index,
  lowest first (a stable order). Every function here ranks that way, so top-K lists, P@K, AP and the
  rank of a true match never depend on the chunk size or on the sorting algorithm.
- **Memory**: never an ``N x M`` matrix. Similarities are computed for ``chunk_size`` queries at a time
  (``chunk_size x M``). ``nearest`` / ``precision_at_k`` keep ``torch.topk``'s K columns per chunk, and
  ``match_ranks`` / ``accuracy_at_k`` a count per query; the full-ranking metrics (AP, mAP) sort each
  chunk's rows, which holds about 30 bytes per similarity at the peak (measured: 25-50 MB more resident
  memory for 16 queries against 73,000 gallery items, about 250 MB for 128). Results are ``O(N)``
  (``O(N K)`` for ``nearest``). glibc's heap needs two precautions, both measured: results are written
  into tensors allocated before the first chunk (small result tensors kept alive between the chunks'
  large temporaries fragmented the heap, and the process grew by about one temporary per chunk: over
  1 GB after 160 chunks), and each chunked function ends with ``malloc_trim`` (on glibc), since callers
  that keep results between calls fragment it the same way (about 10 MB more per call).
- **Relevance** (category level): a gallery item is relevant to a query when their labels are equal.
  **Instance level**: query i has one true match, gallery item ``match[i]``.

Average precision of one query (``mAP@all``, non-interpolated, the usual definition and sklearn's
``average_precision_score`` when there are no ties): with R relevant gallery items at ranks
``r_1 < ... < r_R`` of the full ranking, ``AP = (1/R) sum_k k / r_k``, the mean of the precisions at
the ranks of the relevant items. The **interpolated** AP (what the variational Wyner authors' code
reports as mAP) replaces each precision by the highest precision at that rank or any later one,
``(1/R) sum_k max_{j >= k} j / r_j``; it is never lower. A query with no relevant gallery item has no
AP (0/0): it is skipped by the means and counted by ``RankingScores.without_relevant``; its P@K is 0.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

DEFAULT_CHUNK = 16
"""Queries per chunk: the fastest tried on one CPU thread (16 x 73,000 similarities stay in a 32 MB cache)."""
EXACT_FLOAT32_COUNT = 2**24
"""Counts up to this are exact in float32; longer galleries accumulate hit counts in float64."""
LOW_32_BITS = 0xFFFFFFFF


def _checked(queries: Tensor, gallery: Tensor, chunk_size: int) -> tuple[Tensor, Tensor]:
    """Both as float32 on the queries' device; a ValueError for shapes, emptiness, NaN / inf or chunk sizes."""
    if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"queries and gallery must be [N, D] and [M, D] with the same D, got {list(queries.shape)} "
            f"and {list(gallery.shape)}"
        )
    if len(queries) == 0 or len(gallery) == 0:
        raise ValueError(f"need at least one query and one gallery item, got {len(queries)} and {len(gallery)}")
    if len(gallery) >= 2**31:
        raise ValueError(f"a gallery of {len(gallery)} items is too long (the ranking packs indices in 31 bits)")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    queries, gallery = queries.detach().float(), gallery.detach().to(queries.device).float()
    for name, values in (("queries", queries), ("gallery", gallery)):
        if not bool(torch.isfinite(values).all()):
            raise ValueError(f"the {name} hold NaN or infinite values")
    return queries, gallery


def _checked_k(k: int, gallery_size: int) -> int:
    if not 1 <= k <= gallery_size:
        raise ValueError(f"K must be between 1 and the gallery size {gallery_size}, got {k}")
    return k


def _labels(labels: Tensor, size: int, what: str, device: torch.device) -> Tensor:
    labels = torch.as_tensor(labels)
    if labels.shape != (size,):
        raise ValueError(f"need one {what} per item ({size}), got shape {list(labels.shape)}")
    return labels.to(device)


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` of the running process, if it has one."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


_MALLOC_TRIM = _find_malloc_trim()


def _trim_heap() -> None:
    """Give the heap pages freed by the chunks' temporaries back to the OS (see "Memory" above)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _inverse_norms(vectors: Tensor) -> Tensor:
    norms = vectors.norm(dim=1)
    return torch.where(norms > 0, 1.0 / norms, torch.zeros_like(norms))


def similarity_chunks(
    queries: Tensor, gallery: Tensor, chunk_size: int = DEFAULT_CHUNK
) -> Iterator[tuple[int, Tensor]]:
    """``(start, cosine similarities [chunk, M])`` of consecutive chunks of queries against the whole gallery."""
    queries, gallery = _checked(queries, gallery, chunk_size)
    gallery_scale = _inverse_norms(gallery)
    for start in range(0, len(queries), chunk_size):
        chunk = queries[start : start + chunk_size]
        yield start, (chunk @ gallery.T).mul_(_inverse_norms(chunk)[:, None]).mul_(gallery_scale)


def cosine_similarities(queries: Tensor, gallery: Tensor) -> Tensor:
    """The whole ``[N, M]`` similarity matrix in one chunk (for small sets and tests)."""
    return next(similarity_chunks(queries, gallery, chunk_size=len(queries)))[1]


def _packed_path(similarities: Tensor) -> bool:
    """Whether ``stable_order`` may pack keys for NumPy: CPU tensors on a little-endian machine."""
    return similarities.device.type == "cpu" and sys.byteorder == "little"


def stable_order(similarities: Tensor) -> Tensor:
    """Gallery indices of each row, by similarity (highest first), ties by index (lowest first).

    On the CPU each similarity is packed with its index into one int64 whose integer order is that
    ranking (the float's bits mapped to an order-preserving int32, negated, in the high half; the index
    in the low half) and the rows are sorted with NumPy's (SIMD) sort, several times faster than a
    stable ``torch.sort``; elsewhere ``torch.sort(stable=True)``. Both give the same order.
    """
    if not _packed_path(similarities):
        return similarities.sort(dim=1, descending=True, stable=True).indices
    bits = (similarities + 0.0).view(torch.int32)  # + 0.0 makes -0.0 into 0.0: equal values, equal bits
    descending = bits >> 31  # -1 for negative floats, 0 otherwise
    # negative floats: flip the magnitude bits (int32 order == float order); then negate (~) for descending
    descending.bitwise_and_(0x7FFFFFFF).bitwise_xor_(bits).bitwise_not_()
    del bits
    halves = torch.empty((*similarities.shape, 2), dtype=torch.int32)  # little-endian int64: (low, high)
    halves[..., 0] = torch.arange(similarities.shape[1], dtype=torch.int32)  # ascending index breaks ties
    halves[..., 1] = descending
    keys = halves.view(torch.int64).squeeze(-1)
    keys.numpy().sort(axis=1)  # in place: keys are unique, so any sort gives the same order
    return keys.bitwise_and_(LOW_32_BITS)


def _top_k(similarities: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The first ``k`` of each row's stable ranking: ``torch.topk``, then the tie rule made exact.

    topk may keep any of the items tied with the k-th; rows with more such items than places left
    keep those of lowest index instead. Within the k, equal similarities are put in index order.
    """
    values, columns = similarities.topk(k, dim=1)
    kth = values[:, -1:]
    crowded = (similarities == kth).sum(dim=1) > (values == kth).sum(dim=1)  # tied items left out
    if bool(crowded.any()):
        columns[crowded] = _lowest_tied(similarities[crowded], kth[crowded], k)
    columns = columns.sort(dim=1).values
    values = similarities.gather(1, columns)
    order = values.sort(dim=1, descending=True, stable=True).indices
    return values.gather(1, order), columns.gather(1, order)


def _lowest_tied(similarities: Tensor, kth: Tensor, k: int) -> Tensor:
    """Per row the ``k`` columns above ``kth`` plus, of those equal to it, the ones of lowest index."""
    keep = similarities > kth
    tied = similarities == kth
    keep |= tied & (tied.cumsum(dim=1) <= k - keep.sum(dim=1, keepdim=True))
    return keep.nonzero()[:, 1].view(len(similarities), k)  # row-major: each row's in index order


def nearest(queries: Tensor, gallery: Tensor, k: int, chunk_size: int = DEFAULT_CHUNK) -> tuple[Tensor, Tensor]:
    """Exact cosine k-nearest neighbours: similarities and gallery indices ``[N, k]``, ranked as above."""
    k = _checked_k(k, len(gallery))
    values = torch.empty(len(queries), k, device=queries.device)
    indices = torch.empty(len(queries), k, dtype=torch.long, device=queries.device)
    for start, similarities in similarity_chunks(queries, gallery, chunk_size):
        rows = slice(start, start + len(similarities))
        values[rows], indices[rows] = _top_k(similarities, k)
    _trim_heap()
    return values, indices


def precision_at_k(
    queries: Tensor,
    gallery: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    k: int,
    chunk_size: int = DEFAULT_CHUNK,
) -> float:
    """Mean over queries of the fraction of the top ``k`` gallery items that share the query's label."""
    gallery_labels = _labels(gallery_labels, len(gallery), "gallery label", queries.device)
    query_labels = _labels(query_labels, len(queries), "query label", queries.device)
    _, indices = nearest(queries, gallery, k, chunk_size)
    return float((gallery_labels[indices] == query_labels[:, None]).double().mean())


@dataclass(frozen=True)
class RankingScores:
    """Per-query scores from the full ranking: P@K for each K, AP and interpolated AP (NaN: no relevant item)."""

    precision: dict[int, Tensor]
    average_precision: Tensor
    interpolated_average_precision: Tensor

    @property
    def without_relevant(self) -> int:
        """Queries with no relevant gallery item: they have no AP and are left out of the mAPs."""
        return int(self.average_precision.isnan().sum())

    def rows(self, rows: slice) -> RankingScores:
        """Views of the scores of some queries (written in place, chunk by chunk)."""
        return RankingScores(
            precision={k: values[rows] for k, values in self.precision.items()},
            average_precision=self.average_precision[rows],
            interpolated_average_precision=self.interpolated_average_precision[rows],
        )

    def mean_precision(self, k: int) -> float:
        """P@K: mean over every query (those without a relevant item count 0)."""
        return float(self.precision[k].double().mean())

    def mean_average_precision(self, *, interpolated: bool = False) -> float:
        """mAP over the queries that have a relevant gallery item; a ValueError when none has one."""
        values = self.interpolated_average_precision if interpolated else self.average_precision
        defined = values[~values.isnan()]
        if len(defined) == 0:
            raise ValueError(f"no query has a relevant gallery item ({len(values)} queries): mAP is undefined")
        return float(defined.double().mean())


def _score_chunk(similarities: Tensor, labels: Tensor, gallery_labels: Tensor, out: RankingScores) -> None:
    """Write P@K per K, AP and interpolated AP of one chunk of queries, from its full stable ranking, to ``out``."""
    size = similarities.shape[1]
    order = stable_order(similarities)
    relevant = (labels[:, None] == gallery_labels[None, :]).gather(1, order)  # relevance in rank order
    del order
    hits = relevant.cumsum(dim=1, dtype=torch.float32 if size < EXACT_FLOAT32_COUNT else torch.float64)
    for k, precision_at_k in out.precision.items():
        precision_at_k.copy_(hits[:, k - 1]).div_(k)
    total = hits[:, -1].clone()
    precision = hits.div_(torch.arange(1, size + 1, dtype=hits.dtype, device=hits.device)).mul_(relevant)
    out.average_precision.copy_(precision.sum(dim=1) / total)  # 0/0 = NaN without a relevant item
    # interpolated: the highest precision at this rank or later = a running max from the end
    best_later = precision.flip(1).cummax(dim=1).values.mul_(relevant.flip(1))
    out.interpolated_average_precision.copy_(best_later.sum(dim=1) / total)


def ranking_scores(
    queries: Tensor,
    gallery: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    ks: Sequence[int] = (),
    chunk_size: int = DEFAULT_CHUNK,
) -> RankingScores:
    """P@K for each K in ``ks``, AP and interpolated AP of every query, from one full ranking per chunk."""
    gallery_labels = _labels(gallery_labels, len(gallery), "gallery label", queries.device)
    query_labels = _labels(query_labels, len(queries), "query label", queries.device)
    n, device = len(queries), queries.device
    ks = sorted({_checked_k(k, len(gallery)) for k in ks})
    scores = RankingScores(  # allocated up front, filled chunk by chunk (see "Memory" above)
        precision={k: torch.empty(n, dtype=torch.float64, device=device) for k in ks},
        average_precision=torch.empty(n, device=device),
        interpolated_average_precision=torch.empty(n, device=device),
    )
    for start, similarities in similarity_chunks(queries, gallery, chunk_size):
        rows = slice(start, start + len(similarities))
        _score_chunk(similarities, query_labels[rows], gallery_labels, scores.rows(rows))
    _trim_heap()
    return scores


def mean_average_precision(
    queries: Tensor,
    gallery: Tensor,
    query_labels: Tensor,
    gallery_labels: Tensor,
    chunk_size: int = DEFAULT_CHUNK,
    *,
    interpolated: bool = False,
) -> float:
    """mAP@all over the queries that have a relevant gallery item: standard (non-interpolated), or with
    ``interpolated`` the authors' variant (never lower than the standard one)."""
    scores = ranking_scores(queries, gallery, query_labels, gallery_labels, chunk_size=chunk_size)
    return scores.mean_average_precision(interpolated=interpolated)


def match_ranks(queries: Tensor, gallery: Tensor, match: Tensor, chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """The 0-based rank of each query's true match ``match[i]`` in its stable ranking (0: ranked first)."""
    match = _labels(match, len(queries), "match", queries.device).long()
    if bool(((match < 0) | (match >= len(gallery))).any()):
        raise ValueError(f"matches must be gallery indices in [0, {len(gallery)})")
    ranks = torch.empty(len(queries), dtype=torch.long, device=queries.device)
    positions = torch.arange(len(gallery), device=queries.device)
    for start, similarities in similarity_chunks(queries, gallery, chunk_size):
        rows = slice(start, start + len(similarities))
        target = match[rows, None]
        own = similarities.gather(1, target)
        ahead = (similarities > own).sum(dim=1)
        tied = (similarities == own).sum(dim=1) > 1  # rows where other items tie with the match
        if bool(tied.any()):
            same = (similarities[tied] == own[tied]) & (positions < target[tied])
            ahead[tied] += same.sum(dim=1)  # tied items of lower index come first
        ranks[rows] = ahead
    _trim_heap()
    return ranks


def accuracies(ranks: Tensor, ks: Sequence[int]) -> dict[int, float]:
    """acc@K for each K: the share of queries whose true match has a 0-based rank below K."""
    return {k: float((ranks < k).double().mean()) for k in ks}


def accuracy_at_k(queries: Tensor, gallery: Tensor, match: Tensor, k: int, chunk_size: int = DEFAULT_CHUNK) -> float:
    """Instance-level acc@K: the share of queries whose true match ``match[i]`` is among their top ``k``.

    Any K >= 1 is allowed: from the gallery size on, acc@K is 1.
    """
    if k < 1:
        raise ValueError(f"K must be positive, got {k}")
    return accuracies(match_ranks(queries, gallery, match, chunk_size), [k])[k]


__all__ = [
    "DEFAULT_CHUNK",
    "RankingScores",
    "accuracies",
    "accuracy_at_k",
    "cosine_similarities",
    "mean_average_precision",
    "match_ranks",
    "nearest",
    "precision_at_k",
    "ranking_scores",
    "similarity_chunks",
    "stable_order",
]
