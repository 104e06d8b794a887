"""wynerkit.testing catches components that break their contract (the checks can fail)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ConfigDict

import wynerkit_plugins.modalities.vector as vector
from wynerkit import ComponentParams, hookimpl
from wynerkit.errors import PluginLoadError
from wynerkit.testing import check_component, check_modality, load_plugin


class WrongShapes:
    """A dataset whose items disagree with the shapes it declares."""

    x_shape = (3,)
    y_shape = (2,)

    def split(self, name):
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {name!r}")
        return [{"x": torch.zeros(4), "y": torch.zeros(2), "x_label": -1, "y_label": -1}]

    def describe(self):
        return {"name": "wrong"}


class Plugin:
    @hookimpl
    def wynerkit_register_datasets(self, register):
        register("wrong-shapes", lambda params, context: WrongShapes())


def test_a_dataset_with_wrong_item_shapes_fails_the_contract():
    host = load_plugin(Plugin(), with_builtins=False)
    with pytest.raises(AssertionError, match=r"train\[0\]\.x has shape \(4,\)"):
        check_component(host, "dataset", "wrong-shapes")


def test_a_modality_with_a_batch_mean_loss_fails_the_contract():
    class BatchMeanLoss(vector.VectorModality):
        def reconstruction_loss(self, output, target):
            return ((output - target) ** 2).mean()

    with pytest.raises(AssertionError, match="reconstruction_loss must be per item"):
        check_modality(BatchMeanLoss(vector.VectorParams(dim=3, hidden=4, features=4)))


def test_a_plugin_that_fails_to_load_raises_with_the_reason():
    class Loose(ComponentParams):
        model_config = ConfigDict(extra="allow")

    class BadPlugin:
        @hookimpl
        def wynerkit_register_models(self, register):
            register("loose", lambda p, c: None, params=Loose)

    with pytest.raises(PluginLoadError, match="must forbid extra fields"):
        load_plugin(BadPlugin(), with_builtins=False)


def test_the_builtin_modality_passes():
    host = load_plugin(vector, with_builtins=False)
    built = check_component(host, "modality", "vector", {"dim": 6, "hidden": 8, "features": 5})
    assert built.shape == (6,)
    assert isinstance(built.to_grid(torch.randn(3, 6), nrow=2), np.ndarray)
