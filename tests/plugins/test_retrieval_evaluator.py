"""The retrieval evaluator: which items it ranks, its modes and keys, on fake pairs and fake QMUL files."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from eval_fakes import CodeModel, VectorPairs, evaluate, labelled_pairs
from PIL import Image
from test_qmul import provider, write_set
from torch import Tensor

from wynerkit.errors import UsageError
from wynerkit.evaluation.evaluate import EvaluationFailed
from wynerkit.figures.grid import layout_for
from wynerkit_plugins.evaluators.retrieval_figure import (
    CORRECT_COLOUR,
    FRAME,
    QUERY_COLOUR,
    UNKNOWN_COLOUR,
    WRONG_COLOUR,
    retrieval_figure,
)
from wynerkit_plugins.evaluators.retrieval_items import resolve_mode
from wynerkit_plugins.evaluators.retrieve_command import image_as_item
from wynerkit_plugins.shared.indexed_pairs import IndexedPairs

SIZES = {"train": 20, "valid": 10, "test": 300}
SAME_CLASS = labelled_pairs(SIZES, offset=0)  # x = [one-hot(label), noise], y = [one-hot(label), noise]
CATEGORY_KEYS = {
    "retrieval.p@10",
    "retrieval.p@20",
    "retrieval.map",
    "retrieval.map_interp",
    "retrieval.queries_without_relevant",
    "retrieval.queries",
    "retrieval.gallery",
}


def label_code(noise: float) -> CodeModel:
    """z = the one-hot label of x (or y) plus Gaussian noise (the core seeds the global RNG)."""
    return CodeModel(12, 10, code=lambda features: features + noise * torch.randn(features.shape))


class SideModel(CodeModel):
    """z of x is its one-hot shifted by ``shift`` classes; z of y is y's own one-hot."""

    def __init__(self, shift: int) -> None:
        super().__init__(12, 10)
        self.shift = shift

    def encode_z(self, x: Tensor | None = None, y: Tensor | None = None) -> Tensor:
        if x is not None:
            return x[:, :10].roll(self.shift, dims=1)
        return y[:, :10]


def test_codes_near_the_class_one_hot_retrieve_their_class(builtin_host, tmp_path):
    metrics = evaluate(builtin_host, "retrieval", label_code(0.1), SAME_CLASS, tmp_path, k=[10, 20])
    assert set(metrics) == CATEGORY_KEYS
    assert metrics["retrieval.p@10"] > 0.99
    assert metrics["retrieval.p@20"] > 0.99
    assert metrics["retrieval.map"] > 0.99
    assert metrics["retrieval.map_interp"] >= metrics["retrieval.map"]
    assert metrics["retrieval.queries"] == metrics["retrieval.gallery"] == 300.0
    assert metrics["retrieval.queries_without_relevant"] == 0.0


def test_random_codes_score_near_chance_and_evaluation_is_repeatable(builtin_host, tmp_path):
    noise = CodeModel(12, 10, code=lambda features: torch.randn(features.shape))
    first = evaluate(builtin_host, "retrieval", noise, SAME_CLASS, tmp_path / "a", k=[10, 20], chunk_size=7)
    again = evaluate(builtin_host, "retrieval", noise, SAME_CLASS, tmp_path / "b", k=[10, 20], chunk_size=300)
    assert first == again
    assert 0.03 < first["retrieval.p@20"] < 0.2  # chance is about 0.1
    assert first["retrieval.map"] < 0.2


def test_a_query_is_relevant_to_the_class_of_the_y_it_is_paired_with(builtin_host, tmp_path):
    add_one = labelled_pairs(SIZES, offset=1)  # y's class is x's + 1: a query's class is its partner's
    shifted = evaluate(builtin_host, "retrieval", SideModel(shift=1), add_one, tmp_path / "a", k=[10])
    unshifted = evaluate(builtin_host, "retrieval", SideModel(shift=0), add_one, tmp_path / "b", k=[10])
    assert shifted["retrieval.p@10"] == shifted["retrieval.map"] == 1.0
    assert unshifted["retrieval.p@10"] == 0.0


def test_instance_mode_finds_each_query_s_own_partner(builtin_host, tmp_path):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 12, generator=generator)
    y = x + 0.05 * torch.randn(200, 12, generator=generator)
    labels = torch.full((200,), -1)  # instance retrieval needs no labels
    data = VectorPairs("fake-instances", {"test": (x, y, labels, labels)})
    metrics = evaluate(builtin_host, "retrieval", CodeModel(12, 12), data, tmp_path / "a", mode="instance")
    assert set(metrics) == {"retrieval.acc@1", "retrieval.acc@10", "retrieval.queries", "retrieval.gallery"}
    assert metrics["retrieval.acc@1"] > 0.95
    assert metrics["retrieval.acc@10"] == 1.0
    unrelated = VectorPairs("fake-unrelated", {"test": (x, torch.randn(200, 12, generator=generator), labels, labels)})
    chance = evaluate(builtin_host, "retrieval", CodeModel(12, 12), unrelated, tmp_path / "b", mode="instance")
    assert chance["retrieval.acc@10"] < 0.2  # chance is 10 / 200


def test_auto_picks_instance_for_instance_level_datasets(builtin_host, tmp_path):
    facts = {"pairing": "instance-level: sketch i with edge map i"}
    described = IndexedData(None, facts=facts)
    assert resolve_mode("auto", described) == "instance"
    assert resolve_mode("auto", SAME_CLASS) == "category"
    assert resolve_mode("category", described) == "category"
    source = write_set(tmp_path / "data", "shoes")
    qmul = provider(tmp_path / "data", source)
    assert resolve_mode("auto", qmul) == "instance"


def test_qmul_files_end_to_end_in_auto_mode(builtin_host, tmp_path):
    # fixture pairs: sketch i is the constant 255 - i, edge map i is 255 - 2i (test_qmul.split_images)
    qmul = provider(tmp_path / "data", write_set(tmp_path / "data", "shoes"), size=8)

    def instance_angle(images: Tensor, step: float) -> Tensor:
        index = (images.flatten(1).mean(1) + 1) * 255 / (2 * step)  # inverted: 2 * step * i / 255 - 1
        return torch.stack([torch.cos(index), torch.sin(index)], 1)

    class InstanceModel(CodeModel):
        def encode_z(self, x: Tensor | None = None, y: Tensor | None = None) -> Tensor:
            return instance_angle(x, 1.0) if x is not None else instance_angle(y, 2.0)

    model = InstanceModel(1, 2)  # vector modalities: it cannot draw the images, so no figure
    metrics = evaluate(builtin_host, "retrieval", model, qmul, tmp_path / "run", accuracy_k=[1, 2], figure_queries=0)
    assert metrics == {
        "retrieval.acc@1": 1.0,
        "retrieval.acc@2": 1.0,
        "retrieval.queries": 4.0,
        "retrieval.gallery": 4.0,
    }


class WithGallery(IndexedPairs):
    """An indexed split whose category gallery is its whole y bank (as Sketchy's test split gives every photo)."""

    def gallery(self) -> tuple[Tensor, Tensor]:
        return self.y, self.y_labels


def indexed_split(repeats: int, draws: int, seed: int = 0, kind: type[IndexedPairs] = IndexedPairs) -> IndexedPairs:
    """Banks of 40 x and 40 y one-hot class vectors (4 per class); each x paired ``repeats`` times."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(40) % 10
    bank = torch.cat([torch.nn.functional.one_hot(labels, 10).float(), torch.zeros(40, 2)], 1)
    x_index = torch.arange(40).repeat(repeats)
    y_index = labels[x_index] + 10 * torch.randint(0, draws, (len(x_index),), generator=generator)  # same class
    return kind(bank, bank.clone(), labels, labels, x_index, y_index)


class IndexedData:
    def __init__(self, test: Any, name: str = "fake-indexed", facts: dict[str, Any] | None = None) -> None:
        self.test, self.name, self.facts = test, name, facts or {}
        self.x_shape, self.y_shape = (12,), (12,)

    def split(self, name: str) -> Any:
        return self.test

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.facts}


def test_repeated_items_of_indexed_splits_are_ranked_once(builtin_host, tmp_path):
    split = indexed_split(repeats=3, draws=2)  # 120 pairs of 40 x rows and at most 20 distinct y rows
    distinct_y = len(torch.unique(split.y_index))
    metrics = evaluate(builtin_host, "retrieval", label_code(0.01), IndexedData(split), tmp_path, k=[2])
    assert metrics["retrieval.queries"] == 40.0
    assert metrics["retrieval.gallery"] == float(distinct_y)
    assert metrics["retrieval.map"] == pytest.approx(1.0)


def test_a_gallery_method_supplies_the_category_gallery(builtin_host, tmp_path):
    split = indexed_split(repeats=1, draws=1, kind=WithGallery)  # pairs use 10 of the 40 y rows
    metrics = evaluate(builtin_host, "retrieval", label_code(0.01), IndexedData(split), tmp_path, k=[4])
    assert metrics["retrieval.gallery"] == 40.0
    assert metrics["retrieval.p@4"] == pytest.approx(1.0)


def test_max_queries_takes_a_seeded_subset(builtin_host, tmp_path):
    first = evaluate(builtin_host, "retrieval", label_code(0.5), SAME_CLASS, tmp_path / "a", k=[10], max_queries=50)
    again = evaluate(builtin_host, "retrieval", label_code(0.5), SAME_CLASS, tmp_path / "b", k=[10], max_queries=50)
    assert first == again
    assert first["retrieval.queries"] == 50.0
    assert first["retrieval.gallery"] == 300.0


@pytest.mark.parametrize(
    ("split", "params", "message"),
    [
        (indexed_split(repeats=2, draws=4), {"mode": "instance"}, r"one true match per query.*'fake-indexed'"),
        (indexed_split(repeats=1, draws=1), {"k": [11]}, "between 1 and the gallery size 10, got 11"),
    ],
)
def test_unanswerable_settings_fail_with_a_reason(builtin_host, tmp_path, split, params, message):
    with pytest.raises(EvaluationFailed, match=message) as failed:
        evaluate(builtin_host, "retrieval", label_code(0.01), IndexedData(split), tmp_path, **params)
    assert list(failed.value.failures) == ["retrieval"]


def test_category_mode_needs_labels_and_one_class_per_query(builtin_host, tmp_path):
    unlabelled = labelled_pairs(SIZES, name="no-labels", offset=0)
    for split in unlabelled.splits.values():
        split.y_label = torch.full_like(split.y_label, -1)
    with pytest.raises(EvaluationFailed, match=r"retrieval.*'no-labels'.*-1 as y_label"):
        evaluate(builtin_host, "retrieval", label_code(0.1), unlabelled, tmp_path / "a", k=[10])
    mixed = indexed_split(repeats=2, draws=1)
    mixed.y_index = torch.cat([mixed.y_index[:40], (mixed.y_index[40:] + 1) % 40])  # second pairs: another class
    with pytest.raises(EvaluationFailed, match="one class per query"):
        evaluate(builtin_host, "retrieval", label_code(0.1), IndexedData(mixed), tmp_path / "b", k=[2])


class GreySquares:
    """A modality drawing every item as a 3x3 square of its first value's grey level."""

    def to_grid(self, batch: Tensor, nrow: int) -> np.ndarray:
        return np.full((3, 3, 3), int(batch[0, 0]), dtype=np.uint8)


def test_the_figure_puts_each_query_before_its_results_framed_by_relevance():
    queries = torch.tensor([[10.0], [20.0]])
    results = torch.tensor([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]])
    marks = [[True, False, None], [False, True, True]]
    picture = retrieval_figure(GreySquares(), GreySquares(), queries, results, marks)
    cells = [[np.zeros((3 + 2 * FRAME, 3 + 2 * FRAME, 3), np.uint8)] * 4] * 2
    layout = layout_for(cells, header_col=True)
    assert picture.shape[:2] == layout.shape
    expected = [[10, 1, 2, 3], [20, 4, 5, 6]]
    frames = [
        [QUERY_COLOUR, CORRECT_COLOUR, WRONG_COLOUR, UNKNOWN_COLOUR],
        [QUERY_COLOUR, WRONG_COLOUR] + [CORRECT_COLOUR] * 2,
    ]
    for row in range(2):
        for col in range(4):
            box = layout.box(picture, row, col)
            assert tuple(box[0, 0]) == frames[row][col]
            assert (box[FRAME : FRAME + 3, FRAME : FRAME + 3] == expected[row][col]).all()
    with pytest.raises(ValueError, match="one mark per result"):
        retrieval_figure(GreySquares(), GreySquares(), queries, results, [[True], [True]])


def colour_count(path, colour) -> int:
    return int((np.asarray(Image.open(path).convert("RGB")) == np.array(colour, np.uint8)).all(axis=2).sum())


def test_the_evaluator_draws_its_figure_with_the_marks_of_its_ranking(builtin_host, tmp_path):
    evaluate(builtin_host, "retrieval", label_code(0.1), SAME_CLASS, tmp_path / "good", k=[10], figure_queries=3)
    evaluate(builtin_host, "retrieval", SideModel(shift=1), SAME_CLASS, tmp_path / "bad", k=[10], figure_top=2)
    good, bad = tmp_path / "good/figures/retrieval.png", tmp_path / "bad/figures/retrieval.png"
    frame = colour_count(good, CORRECT_COLOUR) // (3 * 5)  # 3 queries x 5 results, all relevant
    assert frame > 0 and colour_count(good, WRONG_COLOUR) == 0
    assert colour_count(bad, WRONG_COLOUR) == 8 * 2 * frame and colour_count(bad, CORRECT_COLOUR) == 0
    evaluate(builtin_host, "retrieval", label_code(0.1), SAME_CLASS, tmp_path / "none", k=[10], figure_queries=0)
    assert not (tmp_path / "none/figures/retrieval.png").exists()


def test_image_queries_take_the_x_items_channels_size_and_range(tmp_path):
    path = tmp_path / "query.png"
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(path)
    assert image_as_item(path, (1, 2, 2)).tolist() == [[[-1.0, 1.0], [1.0, -1.0]]]
    colour = image_as_item(path, (3, 4, 4))
    assert colour.shape == (3, 4, 4) and torch.equal(colour[0], colour[2]) and -1 <= colour.min() < colour.max() <= 1
    with pytest.raises(UsageError, match=r"x items are \[16\] arrays, not images; pass a .npy file"):
        image_as_item(path, (16,))
