"""wynerkit.testing catches components that break their contract (the checks can fail)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ConfigDict

import wynerkit_plugins.modalities.vector as vector
from wynerkit import ComponentParams, hookimpl
from wynerkit.errors import PluginLoadError
from wynerkit.testing import (
    check_component,
    check_dataset,
    check_evaluator,
    check_modality,
    check_model,
    check_objective_term,
    load_plugin,
    training_step,
)
from wynerkit_plugins.shared.indexed_pairs import IndexedPairs


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


# -- declared capabilities, objective terms and evaluators ----------------------------------------------


class Banked(IndexedPairs):
    """Four pairs over four-row banks; subclasses break one capability each."""

    def __init__(self) -> None:
        rows = torch.arange(4)
        super().__init__(torch.randn(4, 3), torch.randn(4, 2), rows, rows, rows, rows)


class Provider:
    x_shape, y_shape = (3,), (2,)

    def __init__(self, split_type: type, facts: dict | None = None) -> None:
        self.splits = {name: split_type() for name in ("train", "valid", "test")}
        self.facts = facts or {"name": "provider"}

    def split(self, name):
        if name not in self.splits:
            raise ValueError(f"unknown split {name!r}")
        return self.splits[name]

    def describe(self):
        return self.facts


def test_a_well_behaved_banked_split_passes():
    check_dataset(Provider(Banked, {"name": "ok", "offset": 1, "pairing": "instance", "stand_in": False}))


class WrongGallery(Banked):
    def gallery(self):
        return self.x, self.x_labels  # x items where the gallery holds y items


class RedrawsAtRandom(Banked):
    def set_epoch(self, epoch):
        self.y_index = torch.randperm(4)  # not seeded by the epoch


class BatchesOtherItems(Banked):
    def __getitems__(self, indices):
        batch = super().__getitems__(indices)
        return {**batch, "x": batch["x"].flip(0)}  # a batch of the items in another order


class IndexOfAnotherLength(Banked):
    def __len__(self):
        return 3


@pytest.mark.parametrize(
    ("split_type", "message"),
    [
        (WrongGallery, r"gallery\(\) items"),
        (RedrawsAtRandom, r"set_epoch\(1\) twice draws different pairs"),
        (BatchesOtherItems, r"__getitems__\(\[0, \.\.\.\]\) disagrees"),
        (IndexOfAnotherLength, r"must be integer tensors of shape \[3\]"),
    ],
)
def test_a_split_that_breaks_a_capability_it_claims_fails_the_contract(split_type, message):
    torch.manual_seed(0)
    with pytest.raises(AssertionError, match=message):
        check_dataset(Provider(split_type))


def test_describe_facts_of_the_wrong_type_fail_the_contract():
    with pytest.raises(AssertionError, match=r"describe\(\)\['offset'\] is '1'; it must be int \| float"):
        check_dataset(Provider(Banked, {"offset": "1"}))


def vector_model(host, name="variational-wyner"):
    vector = {"name": "vector", "dim": 4, "hidden": 8, "features": 8}
    return check_component(host, "model", name, {"x": vector, "y": vector, "latent": {"z": 2, "u": 1, "v": 1}})


def test_a_model_whose_feature_reuse_changes_its_codes_fails_the_contract(builtin_host):
    model = vector_model(builtin_host)

    class Drifting(type(model)):
        drift = 0.0

        @contextmanager
        def reusing_features(self):
            self.drift = 1.0
            yield
            self.drift = 0.0

        def encode_z(self, x=None, y=None):
            return super().encode_z(x, y) + self.drift

    model.__class__ = Drifting
    with pytest.raises(AssertionError, match=r"reusing_features\(\) changes what encode_z gives"):
        check_model(model)


def test_every_builtin_objective_term_passes_on_a_training_step(builtin_host):
    models = {"variational-wyner": vector_model(builtin_host), "iiae": vector_model(builtin_host, "iiae")}
    for component in builtin_host.registry.of_kind("objective_term"):
        term = check_component(builtin_host, "objective_term", component.name)
        model = models["iiae" if component.name == "IIAE" else "variational-wyner"]
        check_objective_term(term, training_step(builtin_host, model, term.critic_heads))


class Term:
    multiplier = None

    def __init__(self, heads, loss):
        self.critic_heads, self.loss = heads, loss

    def generator_loss(self, step):
        return self.loss

    def critic_loss(self, step):
        return None


@pytest.mark.parametrize(
    ("term", "message"),
    [
        (Term({"h": ("x", "w")}, torch.tensor(0.0)), r"head 'h' reads \('x', 'w'\)"),
        (Term({}, torch.zeros(3)), "generator_loss must be a finite scalar"),
        (Term({"h": ("x", "y")}, torch.tensor(0.0)), "returns a CriticLoss"),
    ],
)
def test_an_objective_term_that_breaks_its_contract_fails(builtin_host, term, message):
    model = vector_model(builtin_host)
    with pytest.raises(AssertionError, match=message):
        check_objective_term(term, training_step(builtin_host, model, {}))


@dataclass
class Run:
    """An ``EvalContext``."""

    model: Any
    data: Any
    figures_dir: Path
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0


class Evaluates:
    def __init__(self, value):
        self.value = value

    def evaluate(self, run):
        return {"fake.metric": self.value}


def test_an_evaluator_must_return_finite_floats(builtin_host, tmp_path):
    run = Run(vector_model(builtin_host), Provider(Banked), tmp_path)
    assert check_evaluator(Evaluates(0.5), run) == {"fake.metric": 0.5}
    with pytest.raises(ValueError, match=r"convert it with float"):
        check_evaluator(Evaluates(np.float32(0.5)), run)
    with pytest.raises(ValueError, match="must be finite"):
        check_evaluator(Evaluates(float("nan")), run)
