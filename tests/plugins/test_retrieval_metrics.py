"""Retrieval metrics against sklearn and a brute-force reference; chunking, ties and edge cases."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from wynerkit_plugins.evaluators import retrieval_metrics
from wynerkit_plugins.evaluators.retrieval_metrics import (
    accuracy_at_k,
    cosine_similarities,
    match_ranks,
    mean_average_precision,
    nearest,
    precision_at_k,
    ranking_scores,
    similarity_chunks,
    stable_order,
)

# -- the brute-force reference: one Python ranking per query ------------------------------------------------


def reference_ranking(similarities: list[float]) -> list[int]:
    """Gallery indices by similarity (highest first), ties by index (lowest first)."""
    return sorted(range(len(similarities)), key=lambda j: (-similarities[j], j))


def reference_scores(
    similarities: list[float], relevant: list[bool], ks: list[int]
) -> tuple[list[float], float, float]:
    """P@K per K, AP and interpolated AP of one query (NaN APs without a relevant item)."""
    ranked = [relevant[j] for j in reference_ranking(similarities)]
    precisions = [sum(ranked[: r + 1]) / (r + 1) for r in range(len(ranked))]
    at_relevant = [r for r, hit in enumerate(ranked) if hit]
    if not at_relevant:
        return [sum(ranked[:k]) / k for k in ks], math.nan, math.nan
    average = sum(precisions[r] for r in at_relevant) / len(at_relevant)
    interpolated = sum(max(precisions[r:]) for r in at_relevant) / len(at_relevant)
    return [sum(ranked[:k]) / k for k in ks], average, interpolated


def assert_close_with_nan(actual: torch.Tensor, expected: list[float]) -> None:
    expected_t = torch.tensor(expected, dtype=torch.float64)
    assert torch.equal(actual.isnan(), expected_t.isnan())
    torch.testing.assert_close(actual.double().nan_to_num(), expected_t.nan_to_num(), atol=1e-5, rtol=0)


# -- strategies: small integer embeddings, so similarities tie often and are exact whatever the chunking ------


@st.composite
def retrieval_problems(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, gallery (integer coordinates in [-2, 2], zero vectors allowed) and labels from 1-4 classes."""
    n, m, d = draw(st.integers(1, 12)), draw(st.integers(1, 30)), draw(st.integers(1, 4))
    coordinates = st.integers(-2, 2)
    queries = torch.tensor(draw(st.lists(coordinates, min_size=n * d, max_size=n * d)), dtype=torch.float32)
    gallery = torch.tensor(draw(st.lists(coordinates, min_size=m * d, max_size=m * d)), dtype=torch.float32)
    classes = draw(st.integers(1, 4))
    labels = st.integers(0, classes - 1)
    query_labels = torch.tensor(draw(st.lists(labels, min_size=n, max_size=n)))
    gallery_labels = torch.tensor(draw(st.lists(labels, min_size=m, max_size=m)))
    return queries.view(n, d), gallery.view(m, d), query_labels, gallery_labels


@settings(max_examples=150, deadline=None)
@given(problem=retrieval_problems(), chunk_size=st.integers(1, 15), data=st.data())
def test_full_ranking_scores_match_the_brute_force_reference_for_any_chunk_size(problem, chunk_size, data):
    queries, gallery, query_labels, gallery_labels = problem
    ks = sorted(set(data.draw(st.lists(st.integers(1, len(gallery)), min_size=1, max_size=3))))
    scores = ranking_scores(queries, gallery, query_labels, gallery_labels, ks, chunk_size=chunk_size)
    similarities = cosine_similarities(queries, gallery).tolist()
    expected = [
        reference_scores(row, (gallery_labels == label).tolist(), ks)
        for row, label in zip(similarities, query_labels.tolist(), strict=True)
    ]
    for i, k in enumerate(ks):
        assert_close_with_nan(scores.precision[k], [precision[i] for precision, _, _ in expected])
    assert_close_with_nan(scores.average_precision, [average for _, average, _ in expected])
    assert_close_with_nan(scores.interpolated_average_precision, [interpolated for _, _, interpolated in expected])
    # chunking changes nothing, not even a bit
    whole = ranking_scores(queries, gallery, query_labels, gallery_labels, ks, chunk_size=len(queries))
    for k in ks:
        assert torch.equal(scores.precision[k], whole.precision[k])
    assert torch.equal(scores.average_precision.nan_to_num(-1), whole.average_precision.nan_to_num(-1))


@settings(max_examples=150, deadline=None)
@given(problem=retrieval_problems(), chunk_size=st.integers(1, 15), data=st.data())
def test_properties_of_p_at_k_map_and_accuracy(problem, chunk_size, data):
    queries, gallery, query_labels, gallery_labels = problem
    k = data.draw(st.integers(1, len(gallery)))
    scores = ranking_scores(queries, gallery, query_labels, gallery_labels, [k], chunk_size=chunk_size)
    assert bool(((scores.precision[k] >= 0) & (scores.precision[k] <= 1)).all())
    defined = ~scores.average_precision.isnan()
    assert torch.equal(defined, ~scores.interpolated_average_precision.isnan())
    assert bool((scores.interpolated_average_precision[defined] >= scores.average_precision[defined] - 1e-6).all())
    assert bool((scores.average_precision[defined] > 0).all())
    assert bool((scores.interpolated_average_precision[defined] <= 1 + 1e-6).all())
    # the top-k path (torch.topk + the tie rule) and the full-ranking path agree exactly
    assert precision_at_k(queries, gallery, query_labels, gallery_labels, k, chunk_size) == pytest.approx(
        scores.mean_precision(k), abs=1e-9
    )
    # acc@K never falls as K grows and agrees with the neighbour lists
    match = torch.tensor(
        data.draw(st.lists(st.integers(0, len(gallery) - 1), min_size=len(queries), max_size=len(queries)))
    )
    accuracies = [accuracy_at_k(queries, gallery, match, kk, chunk_size) for kk in range(1, len(gallery) + 1)]
    assert accuracies == sorted(accuracies)
    assert accuracies[-1] == 1.0
    _, indices = nearest(queries, gallery, k, chunk_size)
    assert accuracies[k - 1] == pytest.approx(float((indices == match[:, None]).any(1).double().mean()), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(problem=retrieval_problems(), chunk_size=st.integers(1, 15), data=st.data())
def test_neighbours_and_match_ranks_follow_the_stable_ranking(problem, chunk_size, data):
    queries, gallery, _, _ = problem
    k = data.draw(st.integers(1, len(gallery)))
    values, indices = nearest(queries, gallery, k, chunk_size)
    similarities = cosine_similarities(queries, gallery)
    rankings = [reference_ranking(row) for row in similarities.tolist()]
    assert indices.tolist() == [ranking[:k] for ranking in rankings]
    assert torch.equal(values, similarities.gather(1, indices))
    match = torch.tensor([ranking[-1] for ranking in rankings])  # each query's worst item
    assert match_ranks(queries, gallery, match, chunk_size).tolist() == [len(gallery) - 1] * len(queries)
    first = torch.tensor([ranking[0] for ranking in rankings])
    assert match_ranks(queries, gallery, first, chunk_size).tolist() == [0] * len(queries)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.sampled_from([-1.0, -0.5, -0.0, 0.0, 1e-40, -1e-40, 0.25, 0.5, 1.0, 3e-8, -3e-8]), min_size=1, max_size=40
    ),
    rows=st.integers(1, 3),
)
def test_the_packed_numpy_sort_equals_a_stable_torch_sort(values, rows):
    similarities = torch.tensor(values * rows, dtype=torch.float32).view(rows, len(values))
    similarities = similarities[:, torch.randperm(len(values), generator=torch.Generator().manual_seed(len(values)))]
    expected = similarities.sort(dim=1, descending=True, stable=True).indices  # what other devices use
    assert torch.equal(stable_order(similarities.clone()), expected)


def test_average_precision_equals_sklearn_per_query():
    generator = torch.Generator().manual_seed(0)
    queries, gallery = torch.randn(40, 8, generator=generator), torch.randn(300, 8, generator=generator)
    query_labels = torch.randint(0, 5, (40,), generator=generator)
    gallery_labels = torch.arange(300) % 5
    similarities = cosine_similarities(queries, gallery)
    assert all(len(set(row)) == len(row) for row in similarities.tolist())  # no ties: sklearn's AP is ours
    scores = ranking_scores(queries, gallery, query_labels, gallery_labels, chunk_size=7)
    expected = [
        average_precision_score((gallery_labels == label).numpy(), row.numpy())
        for row, label in zip(similarities, query_labels.tolist(), strict=True)
    ]
    torch.testing.assert_close(
        scores.average_precision.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5, rtol=0
    )
    assert mean_average_precision(queries, gallery, query_labels, gallery_labels, chunk_size=7) == pytest.approx(
        sum(expected) / len(expected), abs=1e-6
    )


def test_a_hand_ranked_query():
    # gallery on a circle: similarities 1, cos 30, cos 60, cos 90 ... relevant at ranks 2, 3 and 5
    angles = torch.tensor([0.0, 30.0, 60.0, 90.0, 120.0, 150.0]) * math.pi / 180
    gallery = torch.stack([angles.cos(), angles.sin()], 1)
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    query, query_label = torch.tensor([[1.0, 0.0]]), torch.tensor([1])
    standard = (1 / 2 + 2 / 3 + 3 / 5) / 3
    interpolated = (2 / 3 + 2 / 3 + 3 / 5) / 3  # rank 2's precision 1/2 is lifted to rank 3's 2/3
    assert mean_average_precision(query, gallery, query_label, labels) == pytest.approx(standard, abs=1e-6)
    assert mean_average_precision(query, gallery, query_label, labels, interpolated=True) == pytest.approx(
        interpolated, abs=1e-6
    )
    assert precision_at_k(query, gallery, query_label, labels, 3) == pytest.approx(2 / 3)
    assert accuracy_at_k(query, gallery, torch.tensor([2]), 2) == 0.0
    assert accuracy_at_k(query, gallery, torch.tensor([2]), 3) == 1.0


def test_ties_are_broken_by_gallery_index():
    gallery = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, -1.0]])  # items 1, 2, 3 tie
    query = torch.tensor([[3.0, 0.0]])
    _, indices = nearest(query, gallery, 2)
    assert indices.tolist() == [[1, 2]]
    assert match_ranks(query, gallery, torch.tensor([3])).tolist() == [2]
    scores = ranking_scores(query, gallery, torch.tensor([7]), torch.tensor([0, 0, 0, 7, 0]), [2])
    assert scores.precision[2].tolist() == [0.0]  # the relevant item 3 comes after its tied peers 1 and 2
    assert scores.average_precision.tolist() == pytest.approx([1 / 3])


def test_a_perfect_embedding_scores_one():
    labels = torch.arange(60) % 6
    codes = torch.nn.functional.one_hot(labels, 6).float()
    scores = ranking_scores(codes[:30], codes, labels[:30], labels, [5, 10])
    assert scores.mean_precision(5) == scores.mean_precision(10) == 1.0
    assert scores.mean_average_precision() == scores.mean_average_precision(interpolated=True) == 1.0
    assert accuracy_at_k(codes, codes + 0.01 * torch.eye(60, 6), torch.arange(60), 10) == 1.0


def test_queries_without_a_relevant_item_are_skipped_and_counted():
    gallery = torch.eye(4)
    gallery_labels = torch.tensor([0, 0, 1, 1])
    queries = torch.eye(4)[[0, 2, 3]]
    scores = ranking_scores(queries, gallery, torch.tensor([0, 1, 5]), gallery_labels, [2])
    assert scores.without_relevant == 1
    # ranks: query 0: items 0, 1 (relevant), then 2, 3; query 1: item 2, then the tied 0, 1, 3
    assert scores.precision[2].tolist() == [1.0, 0.5, 0.0]  # the query without one counts 0 in P@K
    assert scores.mean_average_precision() == pytest.approx((1.0 + (1 + 2 / 4) / 2) / 2)
    with pytest.raises(ValueError, match="no query has a relevant gallery item"):
        ranking_scores(queries, gallery, torch.tensor([5, 5, 5]), gallery_labels).mean_average_precision()


def test_similarities_are_cosines_computed_a_chunk_at_a_time():
    generator = torch.Generator().manual_seed(1)
    queries, gallery = torch.randn(23, 5, generator=generator), torch.randn(9, 5, generator=generator)
    gallery[4] = 0.0
    chunks = list(similarity_chunks(queries, gallery, chunk_size=10))
    assert [(start, tuple(s.shape)) for start, s in chunks] == [(0, (10, 9)), (10, (10, 9)), (20, (3, 9))]
    expected = torch.nn.functional.cosine_similarity(queries[:, None], gallery[None], dim=2)
    torch.testing.assert_close(torch.cat([s for _, s in chunks]), expected, atol=1e-6, rtol=0)
    assert bool((chunks[0][1][:, 4] == 0).all())  # a zero vector is similar to nothing


@pytest.mark.parametrize(
    ("queries", "gallery", "message"),
    [
        (torch.ones(2, 3), torch.ones(4, 2), "same D"),
        (torch.ones(0, 3), torch.ones(4, 3), "at least one query"),
        (torch.tensor([[math.nan, 1.0]]), torch.ones(4, 2), "queries hold NaN"),
        (torch.ones(2, 2), torch.tensor([[math.inf, 1.0]]), "gallery hold NaN or infinite"),
    ],
)
def test_bad_inputs_are_refused(queries, gallery, message):
    with pytest.raises(ValueError, match=message):
        nearest(queries, gallery, 1)


def test_k_beyond_the_gallery_and_bad_labels_are_refused():
    queries, gallery = torch.ones(2, 2), torch.ones(3, 2)
    with pytest.raises(ValueError, match="between 1 and the gallery size 3, got 4"):
        ranking_scores(queries, gallery, torch.zeros(2), torch.zeros(3), [4])
    with pytest.raises(ValueError, match="one gallery label per item"):
        ranking_scores(queries, gallery, torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"matches must be gallery indices in \[0, 3\)"):
        match_ranks(queries, gallery, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="chunk_size must be positive"):
        match_ranks(queries, gallery, torch.tensor([0, 1]), chunk_size=0)


@settings(max_examples=50, deadline=None)
@given(problem=retrieval_problems(), chunk_size=st.integers(1, 15))
def test_the_torch_path_of_other_devices_gives_the_same_scores(problem, chunk_size):
    queries, gallery, query_labels, gallery_labels = problem
    packed = ranking_scores(queries, gallery, query_labels, gallery_labels, [1], chunk_size)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(retrieval_metrics, "_packed_path", lambda tensor: False)  # as on a GPU: torch.sort, cummax
        plain = ranking_scores(queries, gallery, query_labels, gallery_labels, [1], chunk_size)
    assert torch.equal(packed.precision[1], plain.precision[1])
    for name in ("average_precision", "interpolated_average_precision"):
        assert torch.equal(getattr(packed, name).nan_to_num(-1), getattr(plain, name).nan_to_num(-1))
