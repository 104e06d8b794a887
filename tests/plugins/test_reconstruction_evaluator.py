"""The reconstruction evaluator: the R_* terms' per-item losses averaged over the test split, and its figure."""

from __future__ import annotations

import pytest
import torch
from eval_fakes import CodeModel, VectorPairs, evaluate
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from wynerkit.sample import Sample
from wynerkit.training.step import TrainingStep
from wynerkit_plugins.evaluators.reconstruction import KEYS
from wynerkit_plugins.shared.reconstruction_terms import TERMS

X_KEYS = ("recon.xy2x", "recon.x2x", "recon.y2x")
Y_KEYS = ("recon.xy2y", "recon.y2y", "recon.x2y")


def same_pairs(n_test: int = 30, dim: int = 4, seed: int = 0) -> VectorPairs:
    """y = x: a model whose z is the data itself can then reconstruct either side from either side."""
    generator = torch.Generator().manual_seed(seed)
    splits = {}
    for split, n in (("train", 8), ("valid", 8), ("test", n_test)):
        x = torch.randn(n, dim, generator=generator)
        labels = torch.full((n,), -1)
        splits[split] = (x, x.clone(), labels, labels)
    return VectorPairs("same-pairs", splits)


def test_a_model_that_reconstructs_perfectly_scores_zero(builtin_host, tmp_path):
    metrics = evaluate(builtin_host, "reconstruction", CodeModel(4, 4), same_pairs(), tmp_path)
    assert metrics == {key: 0.0 for key in KEYS}


@settings(max_examples=10, deadline=None)
@given(offset=st.floats(min_value=-3.0, max_value=3.0), loss=st.sampled_from(["l1", "l2"]))
def test_a_constant_error_on_x_is_measured_exactly_and_only_on_x(builtin_host, tmp_path_factory, offset, loss):
    model = CodeModel(4, 4, x_offset=offset, loss=loss)
    metrics = evaluate(builtin_host, "reconstruction", model, same_pairs(), tmp_path_factory.mktemp("run"))
    expected = abs(offset) if loss == "l1" else offset**2
    assert {key: metrics[key] for key in X_KEYS} == pytest.approx(dict.fromkeys(X_KEYS, expected), rel=1e-6, abs=1e-9)
    assert {key: metrics[key] for key in Y_KEYS} == dict.fromkeys(Y_KEYS, 0.0)


def test_a_hand_made_case_averages_per_item_errors_over_uneven_batches(builtin_host, tmp_path):
    # decoders output zeros, so the per-item L2 error is the mean square of the item itself
    data = same_pairs(n_test=30)
    model = CodeModel(4, 4, code=torch.zeros_like)
    metrics = evaluate(builtin_host, "reconstruction", model, data, tmp_path, batch_size=7, max_items=23)
    x = data.split("test").x[:23]
    expected = float(x.square().mean(1).mean())
    assert metrics == pytest.approx(dict.fromkeys(KEYS, expected), rel=1e-6)


def test_each_key_is_the_objective_term_of_the_same_name_on_the_whole_test_split(builtin_host, tmp_path):
    data = same_pairs()
    model = CodeModel(4, 4, code=lambda features: features.flip(1) * 0.7, x_offset=0.2, y_offset=-0.1)
    metrics = evaluate(builtin_host, "reconstruction", model, data, tmp_path)
    test = data.split("test")
    step = TrainingStep(model, None, Sample(x=test.x, y=test.y), torch.Generator().manual_seed(0))
    with torch.no_grad():
        for key, term in KEYS.items():
            assert metrics[key] == pytest.approx(float(TERMS[term][0].generator_loss(step)), rel=1e-6), key


def test_the_figure_shows_data_and_three_reconstructions_per_side(builtin_host, tmp_path):
    evaluate(builtin_host, "reconstruction", CodeModel(4, 4), same_pairs(), tmp_path, figure_items=5)
    picture = Image.open(tmp_path / "figures" / "reconstruction.png")
    assert picture.mode == "RGB" and picture.width > 5 * 4 and picture.height > 0
    evaluate(builtin_host, "reconstruction", CodeModel(4, 4), same_pairs(), tmp_path / "none", figure_items=0)
    assert not (tmp_path / "none" / "figures" / "reconstruction.png").exists()
