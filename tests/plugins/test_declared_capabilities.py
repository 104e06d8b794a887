"""Evaluators and the trainer ask a split for nothing but its declared capabilities.

Every split here is wrapped in a strict view that exposes ``__len__``, ``__getitem__`` and the members
of the ``wynerkit.interfaces`` capabilities the wrapped split implements, and nothing else: reading
any other attribute raises ``AttributeError``, so an evaluator or trainer that probes an undeclared
name fails these tests. The views also record which capabilities were used, so the tests notice
when a capability stops being honoured.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from digit_fakes import FakeDigits, PlainDigits, Run, tiny_wyner

import wynerkit
from wynerkit import NoParams, hookimpl
from wynerkit.interfaces import SPLIT_CAPABILITIES, DatasetProvider, Split
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit.runs.training_run import train_run
from wynerkit.spec.loading import load_spec
from wynerkit.testing import check_component, check_dataset
from wynerkit_plugins.datasets.sketchy import Bank, ClassPairs

REPOSITORY = Path(__file__).resolve().parents[2]
DIM = 8
CLASSES = 4


def members(protocol: type) -> set[str]:
    """The attributes and methods a Protocol declares (its own and its bases')."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass.__module__ != "wynerkit.interfaces":
            continue
        names |= {n for n in klass.__annotations__ if not n.startswith("_")}
        names |= {n for n, v in vars(klass).items() if inspect.isfunction(v) and n != "__init__"}
    return names


class _Strict(torch.utils.data.Dataset):
    __slots__ = ("_inner", "_used")

    def __init__(self, inner: Any, used: set[str]) -> None:
        self._inner, self._used = inner, used

    def __len__(self) -> int:
        return len(self._inner)

    def __getitem__(self, index: int) -> Any:
        return self._inner[index]

    def __getattr__(self, name: str) -> Any:  # reached only for names the view does not declare
        raise AttributeError(f"a split declares no {name!r}: it is not a member of any capability it implements")


def strict(inner: Any, used: set[str]) -> _Strict:
    """A view of ``inner`` with only the members of the capabilities it implements; ``used`` collects reads."""
    declared = set().union(*(members(c) for c in SPLIT_CAPABILITIES if isinstance(inner, c)))

    def forward(name: str) -> property:
        def read(self: _Strict) -> Any:
            self._used.add(name)
            return getattr(self._inner, name)

        return property(read)

    view = type(f"Strict{type(inner).__name__}", (_Strict,), {n: forward(n) for n in declared})
    return view(inner, used)


class StrictData:
    """A ``DatasetProvider`` whose splits are strict views (the provider itself has only its interface)."""

    def __init__(self, inner: DatasetProvider) -> None:
        self.inner, self.used = inner, set[str]()
        self.x_shape, self.y_shape = tuple(inner.x_shape), tuple(inner.y_shape)
        self._views: dict[str, _Strict] = {}

    def split(self, name: Split) -> _Strict:
        if name not in self._views:
            self._views[name] = strict(self.inner.split(name), self.used)
        return self._views[name]

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


class ClassVectors:
    """Class-paired vectors through Sketchy's ``ClassPairs``: a split with every optional capability."""

    x_shape = y_shape = (DIM,)

    def __init__(self, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        means = torch.randn(CLASSES, DIM, generator=generator) * 3
        self.splits = {}
        for stream, name in enumerate(("train", "valid", "test"), start=1):
            sketches, photos = self._bank(means, 6, generator), self._bank(means, 3, generator)
            rows = np.arange(len(sketches.labels)), np.arange(len(photos.labels))
            self.splits[name] = ClassPairs(sketches, photos, *rows, seed=seed, stream=stream)

    @staticmethod
    def _bank(means: torch.Tensor, per_class: int, generator: torch.Generator) -> Bank:
        labels = torch.arange(CLASSES).repeat_interleave(per_class)
        return Bank(means[labels] + torch.randn(len(labels), DIM, generator=generator), labels.numpy())

    def split(self, name: Split) -> ClassPairs:
        if name not in self.splits:
            raise ValueError(f"unknown split {name!r}")
        return self.splits[name]

    def describe(self) -> dict[str, Any]:
        return {"name": "class-vectors", "pairing": "category: each x with a y of its class"}


def test_the_class_vectors_split_claims_every_capability_and_honours_it():
    data = ClassVectors()
    assert all(isinstance(data.split("test"), c) for c in SPLIT_CAPABILITIES)
    check_dataset(data)


def test_the_strict_view_exposes_exactly_the_declared_members():
    used: set[str] = set()
    inner = ClassVectors().split("test")
    view = strict(inner, used)
    assert view.gallery is not None and "gallery" in used
    for undeclared in ("photo_rows", "queries", "labels"):  # ClassPairs has them, but no capability declares them
        assert hasattr(inner, undeclared)
        with pytest.raises(AttributeError, match=f"declares no '{undeclared}'"):
            getattr(view, undeclared)
    plain = strict(PlainDigits(per_class=3).split("test"), used)
    assert not any(isinstance(plain, c) for c in SPLIT_CAPABILITIES)


SMALL_DIGITS = {"batch_size": 64, "classifier_epochs": 20, "joint_samples": 128}
DIGIT_EVALUATORS = {
    "coherence": SMALL_DIGITS,
    "fd": {**SMALL_DIGITS, "conditions_per_class": 3, "samples_per_condition": 4},
}
ANY_EVALUATORS = {
    "probe": {"max_train": 200, "iterations": 10},
    "reconstruction": {"figure_items": 2},
    "retrieval": {"mode": "category", "k": [3], "figure_queries": 2},
}


def test_every_builtin_evaluator_is_covered_here(builtin_host):
    covered = set(DIGIT_EVALUATORS) | set(ANY_EVALUATORS)
    assert {c.name for c in builtin_host.registry.of_kind("evaluator")} == covered


@pytest.mark.parametrize("digits", [FakeDigits, PlainDigits], ids=["banked", "plain"])
@pytest.mark.parametrize("evaluator", [*DIGIT_EVALUATORS, *ANY_EVALUATORS])
def test_evaluators_read_only_declared_capabilities_of_digit_splits(builtin_host, tmp_path, digits, evaluator):
    data = StrictData(digits(per_class=20))
    run = Run(tiny_wyner(builtin_host), data, figures_dir=tmp_path)
    spec = {**DIGIT_EVALUATORS, **ANY_EVALUATORS}[evaluator]
    check_component(builtin_host, "evaluator", evaluator, spec, run=run)  # runs it: finite metrics, or it fails
    if digits is FakeDigits and evaluator in DIGIT_EVALUATORS:
        assert {"x", "x_labels", "x_index", "transform"} <= data.used, "the digit classifiers read the banks"


@pytest.mark.parametrize("evaluator", list(ANY_EVALUATORS))
def test_evaluators_read_only_declared_capabilities_of_class_pair_splits(builtin_host, tmp_path, evaluator):
    data = StrictData(ClassVectors())
    vector = {"name": "vector", "dim": DIM, "hidden": 16, "features": 16}
    model = check_component(
        builtin_host, "model", "variational-wyner", {"x": vector, "y": vector, "latent": {"z": 2, "u": 2, "v": 2}}
    )
    check_component(builtin_host, "evaluator", evaluator, ANY_EVALUATORS[evaluator], run=Run(model, data, tmp_path))
    if evaluator == "retrieval":
        assert {"gallery", "x_index", "y_index"} <= data.used, "category retrieval ranks the whole gallery()"


class StrictDataPlugin:
    """Registers ``strict-class-vectors`` and keeps every provider it builds."""

    def __init__(self) -> None:
        self.built: list[StrictData] = []

    def build(self, params: NoParams, context: Any) -> StrictData:
        self.built.append(StrictData(ClassVectors(context.seed)))
        return self.built[-1]

    @hookimpl
    def wynerkit_register_datasets(self, register):
        register("strict-class-vectors", self.build, params=NoParams)


def test_the_trainer_and_evaluation_read_only_declared_capabilities(tmp_path):
    plugin = StrictDataPlugin()
    host = PluginHost.load([*discover(builtin_only=True), PluginSource.from_object("strict", plugin)], blocked=())
    assert not host.errors
    vector = {"name": "vector", "dim": DIM, "hidden": 16, "features": 16, "decoder_hidden": 16}
    spec = {
        "name": "strict",
        "seed": 0,
        "data": {"name": "strict-class-vectors"},
        "model": {"name": "variational-wyner", "latent": {"z": 2, "u": 2, "v": 2}, "x": vector, "y": vector},
        "estimator": {"name": "adversarial-js", "hidden": 16, "embed": 16},
        "objective": {"terms": {"D_joint": 1, "I_x2y": 1, "R_x2y": 1, "R_y2x": 1}},
        "train": {"max_steps": 9, "batch_size": 4, "log_every": 3, "checkpoint": {"every": 9, "valid_batches": 1}},
        "evaluate": [{"name": n, **p} for n, p in ANY_EVALUATORS.items()],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    loaded = load_spec(path, host.registry)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    summary = train_run(run_dir, loaded.spec, host.registry)
    assert summary["steps"] == 9 and "probe.z_x" in summary and "recon.x2y" in summary
    # 24 training items in batches of 4: 6 steps an epoch, so the trainer set a second epoch
    used = set().union(*(data.used for data in plugin.built))
    assert {"set_epoch", "batch_sampler", "__getitems__", "gallery"} <= used


# -- no probing of undeclared names ------------------------------------------------------------------

CAPABILITY_READERS = [
    "wynerkit/training/trainer.py",
    "wynerkit/evaluation/evaluate.py",
    "wynerkit/data/loading.py",
    "wynerkit/testing.py",
    *(str(p.relative_to(REPOSITORY)) for p in sorted((REPOSITORY / "plugins" / "evaluators").glob("*.py"))),
]


def probes(source: str) -> list[str]:
    """``hasattr(obj, name)`` and ``getattr(obj, name, default)`` calls: capability probing by name."""
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    return [
        f"line {call.lineno}: {ast.unparse(call)}"
        for call in calls
        if call.func.id == "hasattr" or (call.func.id == "getattr" and len(call.args) == 3)
    ]


@pytest.mark.parametrize("relative", CAPABILITY_READERS)
def test_capabilities_are_checked_with_isinstance_never_probed_by_name(relative):
    source = (REPOSITORY / relative).read_text()
    allowed = ["getattr(ctypes.CDLL(None), 'malloc_trim', None)"]  # libc, not a component
    found = [p for p in probes(source) if not any(a in p for a in allowed)]
    assert not found, f"{relative}: declare a Protocol in wynerkit.interfaces instead of {found}"


def test_the_capabilities_are_part_of_the_documented_api():
    text = (REPOSITORY / "docs" / "plugins.md").read_text()
    for capability in (*SPLIT_CAPABILITIES, wynerkit.interfaces.QueryReader, wynerkit.interfaces.FeatureReuse):
        assert f"`{capability.__name__}`" in text, f"docs/plugins.md does not document {capability.__name__}"
