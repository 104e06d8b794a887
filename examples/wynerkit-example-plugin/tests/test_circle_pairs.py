"""Tests of the circle-pairs dataset through wynerkit's public API only.

They run against the *installed* plugin (``pip install .`` first), so they also catch packaging
mistakes such as a missing module or a wrong entry point.
"""

from __future__ import annotations

import math
from importlib.metadata import entry_points

import pytest
import torch
import wynerkit_example
from pydantic import ValidationError
from wynerkit_example import CirclePairs, CirclePairsParams

from wynerkit import DatasetProvider, Pair
from wynerkit.testing import check_component, load_plugin

SMALL = {"n_train": 96, "n_valid": 32, "n_test": 40}


def stacked(provider: CirclePairs, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    items = provider.split(split)
    batch = torch.utils.data.default_collate([items[i] for i in range(len(items))])
    return batch["x"], batch["y"], batch["x_label"]


def angle(points: torch.Tensor) -> torch.Tensor:
    return torch.atan2(points[:, 1].double(), points[:, 0].double())


def test_the_entry_point_names_this_package() -> None:
    (ep,) = [ep for ep in entry_points(group="wynerkit") if ep.name == "example"]
    assert ep.value == "wynerkit_example"
    assert ep.load() is wynerkit_example


def test_honours_the_dataset_contract_through_the_registry() -> None:
    """The same spec validation, build and interface checks that `wynerkit run` relies on."""
    # Only this plugin: circle-pairs needs no other component, and the test should not depend on
    # which other plugins happen to be installed (the CLI's `plugins list` shows clashes).
    host = load_plugin(wynerkit_example, name="example", with_builtins=False)
    component = host.registry.get("dataset", "circle-pairs")
    assert component.plugin == "example"
    assert component.summary.startswith("Two noisy 2-d views of a common angle")
    provider = check_component(host, "dataset", "circle-pairs", SMALL, seed=3)
    assert isinstance(provider, DatasetProvider)
    assert provider.describe()["seed"] == 3


@pytest.mark.parametrize(
    "bad",
    [{"n_train": 0}, {"noise": -0.1}, {"noise": float("nan")}, {"offset": float("inf")}, {"radius": 2.0}],
)
def test_params_refuse_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        CirclePairsParams(**bad)


def test_items_are_pairs_of_float32_points_with_angle_bin_labels() -> None:
    provider = CirclePairs(CirclePairsParams(**SMALL), seed=0)
    assert provider.x_shape == provider.y_shape == (2,)
    for split, size in (("train", 96), ("valid", 32), ("test", 40)):
        items = provider.split(split)
        assert len(items) == size
        item: Pair = items[0]
        assert item["x"].dtype == item["y"].dtype == torch.float32
        assert item["x"].shape == item["y"].shape == (2,)
        assert item["x_label"] == item["y_label"]
        assert 0 <= item["x_label"] <= 7
        _, _, labels = stacked(provider, split)
        assert labels.min() >= 0
        assert labels.max() <= 7
    assert provider.describe()["sizes"] == {"train": 96, "valid": 32, "test": 40}


def test_unknown_split_is_refused() -> None:
    with pytest.raises(ValueError, match="split"):
        CirclePairs(CirclePairsParams(**SMALL)).split("training")  # type: ignore[arg-type]


def test_same_seed_same_items_other_seed_other_items() -> None:
    params = CirclePairsParams(**SMALL)
    a, b, c = CirclePairs(params, seed=7), CirclePairs(params, seed=7), CirclePairs(params, seed=8)
    for split in ("train", "valid", "test"):
        for first, second in zip(stacked(a, split), stacked(b, split), strict=True):
            assert torch.equal(first, second)
        assert not torch.equal(stacked(a, split)[0], stacked(c, split)[0])


def test_resizing_one_split_leaves_the_others_unchanged() -> None:
    small = CirclePairs(CirclePairsParams(**SMALL), seed=1)
    bigger = CirclePairs(CirclePairsParams(**{**SMALL, "n_test": 400}), seed=1)
    assert torch.equal(stacked(small, "train")[0], stacked(bigger, "train")[0])
    assert torch.equal(stacked(small, "valid")[1], stacked(bigger, "valid")[1])


def test_splits_are_disjoint() -> None:
    provider = CirclePairs(CirclePairsParams(**SMALL), seed=0)
    seen: dict[tuple[float, ...], str] = {}
    for split in ("train", "valid", "test"):
        x, y, _ = stacked(provider, split)
        for row in torch.cat([x, y], dim=1).tolist():
            key = tuple(row)
            assert key not in seen, f"an item of {split} also appears in {seen[key]}"
            seen[key] = split


@pytest.mark.parametrize("offset", [0.0, math.pi / 2, 2.5, -1.0])
def test_without_noise_y_is_x_rotated_by_offset_and_labels_bin_the_angle(offset: float) -> None:
    provider = CirclePairs(CirclePairsParams(**SMALL, noise=0.0, offset=offset), seed=2)
    x, y, labels = stacked(provider, "train")
    difference = angle(y) - angle(x) - offset
    assert torch.allclose(torch.cos(difference), torch.ones_like(difference), atol=1e-5)
    theta = torch.remainder(angle(x), 2 * math.pi)
    assert torch.equal(labels, torch.floor(theta / (2 * math.pi / 8)).long().clamp(0, 7))
    radii = torch.cat([x.norm(dim=1), y.norm(dim=1)])
    assert radii.min() >= 0.5 - 1e-5
    assert radii.max() <= 1.5 + 1e-5


def test_the_angle_is_common_and_the_radii_are_local() -> None:
    """With noise the angles still agree closely, while the two radii are unrelated."""
    provider = CirclePairs(CirclePairsParams(n_train=4000, noise=0.05, offset=1.0), seed=0)
    x, y, _ = stacked(provider, "train")
    agreement = torch.cos(angle(y) - angle(x) - 1.0).mean()
    assert agreement > 0.99
    radii = torch.stack([x.norm(dim=1), y.norm(dim=1)]).double()
    correlation = torch.corrcoef(radii)[0, 1]
    assert abs(correlation) < 0.1
