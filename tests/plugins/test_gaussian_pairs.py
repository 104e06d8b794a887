"""The ``gaussian-pairs`` dataset: determinism, splits, exact covariance and mutual information."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import wynerkit
from wynerkit.components import Registry
from wynerkit.testing import check_component, load_plugin
from wynerkit_plugins.datasets import gaussian_pairs
from wynerkit_plugins.datasets.gaussian_pairs import GaussianPairs, GaussianPairsParams, make_gaussian_pairs

SMALL_SPLITS = {"n_train": 64, "n_valid": 16, "n_test": 16}


def build(seed: int = 0, **params: object) -> GaussianPairs:
    context = wynerkit.BuildContext(registry=Registry(), seed=seed)
    return make_gaussian_pairs(GaussianPairsParams(**{**SMALL_SPLITS, **params}), context)


def test_satisfies_the_dataset_contract_through_the_plugin_host():
    host = load_plugin(gaussian_pairs, "gaussian-pairs-under-test", with_builtins=False)
    built = check_component(host, "dataset", "gaussian-pairs", {**SMALL_SPLITS, "x_dim": 5, "y_dim": 3}, seed=3)
    assert isinstance(built, wynerkit.DatasetProvider)
    assert (built.x_shape, built.y_shape) == ((5,), (3,))


@pytest.mark.parametrize(
    "bad",
    [
        {"z_dim": 0},
        {"u_dim": -1},
        {"v_dim": -1},
        {"x_dim": 0},
        {"noise": 0.0},
        {"noise": -0.1},
        {"noise": float("nan")},
        {"noise": float("inf")},
        {"n_train": 0},
        {"structure_seed": -1},
        {"surely_not_a_field": 1},
    ],
)
def test_params_reject_bad_values_and_unknown_fields(bad: dict[str, object]):
    with pytest.raises(ValidationError):
        GaussianPairsParams(**bad)


def test_items_are_unlabelled_float32_pairs_of_the_declared_shapes():
    data = build(x_dim=5, y_dim=3)
    item = data.split("train")[0]
    assert set(item) == {"x", "y", "x_label", "y_label"}
    assert item["x"].dtype == torch.float32 and item["x"].shape == (5,)
    assert item["y"].dtype == torch.float32 and item["y"].shape == (3,)
    assert (item["x_label"], item["y_label"]) == (-1, -1)


def test_split_sizes_and_caching():
    data = build(n_train=50, n_valid=7, n_test=11)
    assert [len(data.split(s)) for s in ("train", "valid", "test")] == [50, 7, 11]
    assert data.split("valid") is data.split("valid")


def test_same_seed_gives_identical_data_and_different_seeds_differ():
    a, b, c = build(seed=1), build(seed=1), build(seed=2)
    for split in ("train", "valid", "test"):
        assert torch.equal(a.split(split).x, b.split(split).x)
        assert torch.equal(a.split(split).y, b.split(split).y)
        assert not torch.allclose(a.split(split).x, c.split(split).x)
    np.testing.assert_array_equal(a.covariance(), c.covariance())  # structure depends on structure_seed only


def test_structure_seed_changes_the_mixing_but_not_the_run_seed_streams():
    a, b = build(structure_seed=0), build(structure_seed=1)
    assert not np.allclose(a.mixing_x, b.mixing_x)
    assert not np.allclose(a.covariance(), b.covariance())
    assert a.mutual_information() != pytest.approx(b.mutual_information())


def test_splits_are_disjoint_and_independent_of_each_others_sizes():
    data = build(x_dim=4)
    rows = {split: {tuple(r) for r in data.split(split).x.tolist()} for split in ("train", "valid", "test")}
    assert rows["train"].isdisjoint(rows["valid"]) and rows["train"].isdisjoint(rows["test"])
    assert rows["valid"].isdisjoint(rows["test"])
    bigger_train = build(x_dim=4, n_train=200)
    assert torch.equal(data.split("valid").x, bigger_train.split("valid").x)
    assert torch.equal(data.split("test").y, bigger_train.split("test").y)


def test_generation_is_lazy():
    data = build(n_train=10**9)  # would not fit in memory if drawn up front
    assert data.describe()["sizes"]["train"] == 10**9
    assert len(data.split("test")) == SMALL_SPLITS["n_test"]


def test_items_collate_through_a_dataloader():
    data = build(x_dim=6, y_dim=4)
    batch = next(iter(torch.utils.data.DataLoader(data.split("train"), batch_size=10, shuffle=False)))
    assert batch["x"].shape == (10, 6) and batch["y"].shape == (10, 4)
    assert batch["x"].dtype == torch.float32
    assert torch.equal(batch["x_label"], torch.full((10,), -1))
    assert torch.equal(batch["x"], data.split("train").x[:10])


def test_unknown_split_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown split 'training'.*train, valid, test"):
        build().split("training")  # type: ignore[arg-type]


def test_negative_seed_is_refused():
    with pytest.raises(ValueError, match="seed"):
        build(seed=-1)


def linear_map(data: GaussianPairs) -> np.ndarray:
    """The matrix taking the independent standard normals (z, u, v, e_x, e_y) to (x, y)."""
    p = data.params
    a, b = data.mixing_x, data.mixing_y
    zuv = p.z_dim + p.u_dim + p.v_dim
    m = np.zeros((p.x_dim + p.y_dim, zuv + p.x_dim + p.y_dim))
    m[: p.x_dim, : p.z_dim] = a[:, : p.z_dim]
    m[: p.x_dim, p.z_dim : p.z_dim + p.u_dim] = a[:, p.z_dim :]
    m[p.x_dim :, : p.z_dim] = b[:, : p.z_dim]
    m[p.x_dim :, p.z_dim + p.u_dim : zuv] = b[:, p.z_dim :]
    m[:, zuv:] = p.noise * np.eye(p.x_dim + p.y_dim)
    return m


@pytest.mark.parametrize(("u_dim", "v_dim"), [(2, 2), (0, 3), (1, 0), (0, 0)])
def test_covariance_equals_the_linear_models(u_dim: int, v_dim: int):
    data = build(z_dim=2, u_dim=u_dim, v_dim=v_dim, x_dim=5, y_dim=3, noise=0.3)
    m = linear_map(data)
    cov = data.covariance()
    assert cov.dtype == np.float64 and cov.shape == (8, 8)
    np.testing.assert_allclose(cov, m @ m.T, atol=1e-12)
    np.testing.assert_allclose(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() > 0


def test_empirical_covariance_of_a_large_split_matches_the_exact_one():
    n = 100_000
    data = build(x_dim=4, y_dim=3, noise=0.2, n_train=n, seed=5)
    train = data.split("train")
    samples = torch.cat([train.x, train.y], dim=1).double().numpy()
    exact = data.covariance()
    # Each entry's standard error is sqrt((s_ii s_jj + s_ij^2) / n); allow six of them.
    tolerance = 6 * np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / n)
    assert (np.abs(np.cov(samples, rowvar=False) - exact) < tolerance).all()
    assert np.abs(samples.mean(axis=0)).max() < 6 * np.sqrt(np.diag(exact).max() / n)
    # Unit-ish scale: the mixing is normalised by the fan-in.
    assert 0.2 < np.diag(exact).mean() < 3


def test_mixing_matrices_are_copies():
    data = build()
    data.mixing_x[:] = 0
    assert np.abs(data.mixing_x).sum() > 0


def test_describe_is_json_and_reports_the_exact_mutual_information():
    data = build(x_dim=5, y_dim=3)
    facts = json.loads(json.dumps(data.describe()))
    assert facts["name"] == "gaussian-pairs"
    assert facts["sizes"] == {"train": 64, "valid": 16, "test": 16}
    assert (facts["x_shape"], facts["y_shape"]) == ([5], [3])
    assert facts["stand_in"] is False and "synthetic" in facts["source"]
    assert facts["mutual_information_xy_nats"] == pytest.approx(data.mutual_information())


def test_mutual_information_of_a_single_shared_coordinate_matches_the_scalar_formula():
    # x = a z + n e_x, y = b z + n e_y: I = -1/2 log(1 - rho^2) with rho the correlation.
    data = build(z_dim=1, u_dim=0, v_dim=0, x_dim=1, y_dim=1, noise=0.5)
    (a,), (b,) = data.mixing_x[:, 0], data.mixing_y[:, 0]
    rho2 = (a * b) ** 2 / ((a**2 + 0.25) * (b**2 + 0.25))
    assert data.mutual_information() == pytest.approx(-0.5 * math.log(1 - rho2), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    z_dim=st.integers(1, 4),
    u_dim=st.integers(0, 3),
    v_dim=st.integers(0, 3),
    x_dim=st.integers(1, 6),
    y_dim=st.integers(1, 6),
    structure_seed=st.integers(0, 1000),
    noise=st.floats(0.05, 2.0),
    factor=st.floats(0.2, 0.8),
)
def test_mutual_information_is_positive_and_grows_as_noise_falls(
    z_dim: int, u_dim: int, v_dim: int, x_dim: int, y_dim: int, structure_seed: int, noise: float, factor: float
):
    dims = {"z_dim": z_dim, "u_dim": u_dim, "v_dim": v_dim, "x_dim": x_dim, "y_dim": y_dim}
    noisy = build(noise=noise, structure_seed=structure_seed, **dims).mutual_information()
    clean = build(noise=noise * factor, structure_seed=structure_seed, **dims).mutual_information()
    assert 0 < noisy < clean
