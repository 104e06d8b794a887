"""Contract checks a plugin author runs against their own components (requires pytest).

Typical use in a plugin's test suite::

    import my_plugin
    from wynerkit.testing import check_component, load_plugin

    def test_my_dataset_honours_the_contract():
        host = load_plugin(my_plugin)
        check_component(host, "dataset", "my-dataset", {"n_train": 64})

``check_component`` validates the spec entry through the same discriminated union the CLI uses,
builds the component, checks it satisfies its interface, and exercises it: datasets yield
``Pair`` items of the declared shapes from disjoint splits, modalities' networks produce the
declared shapes, models return full samples, estimators give one log-ratio per item, objective
terms declare valid heads (and, given a ``step``, return finite losses), evaluators return
finite metrics (given a ``run``). Every optional capability a split, provider or model claims
(``wynerkit.interfaces``: ``EpochSplit``, ``GallerySplit``, ``FeatureReuse``, ...) is exercised too.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from wynerkit.components import BuildContext
from wynerkit.errors import PluginLoadError
from wynerkit.evaluation.evaluate import check_metrics
from wynerkit.figures.panels import drawing
from wynerkit.interfaces import (
    INTERFACE_OF,
    BankedSplit,
    BatchedSplit,
    BimodalModel,
    CriticLoss,
    DatasetFacts,
    DatasetProvider,
    EpochBatchSampler,
    EpochSplit,
    EvalContext,
    Evaluator,
    FeatureReuse,
    GallerySplit,
    IndexedSplit,
    Modality,
    ObjectiveTerm,
    QueryReader,
    RatioEstimator,
    SampledSplit,
    StepContext,
)
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit.sample import VARIABLES, Sample
from wynerkit.spec.models import SpecBuilder
from wynerkit.training.step import TrainingStep

BATCH = 5
MULTIPLIERS = ("lambda_ci", "lambda_rec", None)


def load_plugin(plugin: object, name: str = "plugin-under-test", *, with_builtins: bool = True) -> PluginHost:
    """A host with the built-in plugins and ``plugin``; raises if ``plugin`` failed to load."""
    sources = discover(builtin_only=True) if with_builtins else []
    host = PluginHost.load([*sources, PluginSource.from_object(name, plugin)], blocked=())
    if host.errors:
        raise PluginLoadError("; ".join(str(e) for e in host.errors))
    return host


def check_component(
    host: PluginHost,
    kind: str,
    name: str,
    spec: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    step: StepContext | None = None,
    run: EvalContext | None = None,
    **kind_args: Any,
) -> Any:
    """Validate, build and exercise one component; returns the built object.

    An objective term's losses are computed on ``step`` and an evaluator is run on ``run`` when given
    (they need a model and data; without them only their declarations are checked).
    """
    component = host.registry.get(kind, name)
    variant = SpecBuilder(host.registry).variant(component)
    params = variant.model_validate({"name": name, **(spec or {})})
    json.dumps(variant.model_json_schema())  # the schema must be serialisable for `wynerkit spec schema`
    with pytest.raises(ValueError, match="xtra"):
        variant.model_validate({"name": name, **(spec or {}), "surely_not_a_field": 1})
    context = BuildContext(registry=host.registry, seed=seed)
    torch.manual_seed(seed)
    built = component.factory(params, context, **kind_args)
    interface = INTERFACE_OF[kind]
    assert isinstance(built, interface), f"{kind} {name!r} does not implement {interface.__name__}"
    if kind == "dataset":
        check_dataset(built)
    elif kind == "modality":
        check_modality(built)
    elif kind == "model":
        check_model(built)
    elif kind == "estimator":
        check_estimator(built, kind_args["x"], kind_args["y"], kind_args["latent"])
    elif kind == "objective_term":
        check_objective_term(built, step)
    elif kind == "evaluator":
        check_evaluator(built, run)
    return built


def check_dataset(provider: DatasetProvider) -> None:
    """Every split yields Pair items of the declared shapes, and describe() is JSON."""
    json.dumps(provider.describe())
    for split in ("train", "valid", "test"):
        items = provider.split(split)
        assert len(items) > 0, f"split {split!r} is empty"
        item = items[0]
        assert set(item) >= {"x", "y", "x_label", "y_label"}, f"{split}[0] lacks Pair keys: {sorted(item)}"
        assert tuple(item["x"].shape) == tuple(provider.x_shape), f"{split}[0].x has shape {tuple(item['x'].shape)}"
        assert tuple(item["y"].shape) == tuple(provider.y_shape), f"{split}[0].y has shape {tuple(item['y'].shape)}"
        batch = torch.utils.data.default_collate([items[i] for i in range(min(BATCH, len(items)))])
        assert batch["x"].shape[1:] == tuple(provider.x_shape)
        check_split_capabilities(items, provider, split)
    with pytest.raises(ValueError, match="split"):
        provider.split("nonsense")  # type: ignore[arg-type]
    check_facts(provider.describe())
    if isinstance(provider, QueryReader):
        check_query_reader(provider, tuple(provider.x_shape))


def check_facts(facts: Mapping[str, Any]) -> None:
    """The ``DatasetFacts`` keys that ``describe()`` gives have their documented types."""
    for key, kind in get_type_hints(DatasetFacts).items():
        if key in facts:
            value = facts[key]
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            assert ok, (
                f"describe()[{key!r}] is {value!r}; it must be {kind.__name__ if isinstance(kind, type) else kind}"
            )


def check_split_capabilities(split: Any, provider: DatasetProvider, name: str = "split") -> None:
    """Exercise every optional capability ``split`` claims (``wynerkit.interfaces``)."""
    n, first = min(BATCH, len(split)), split[0]
    if isinstance(split, BatchedSplit):
        batch = split.__getitems__(list(range(n)))
        assert tuple(batch["x"].shape) == (n, *provider.x_shape), f"{name}.__getitems__ x: {tuple(batch['x'].shape)}"
        assert tuple(batch["y"].shape) == (n, *provider.y_shape), f"{name}.__getitems__ y: {tuple(batch['y'].shape)}"
        for label in ("x_label", "y_label"):
            assert batch[label].dtype == torch.int64 and batch[label].shape == (n,), f"{name}.__getitems__ {label}"
        same = torch.allclose(batch["x"][0].float(), first["x"].float(), atol=1e-6)
        assert same, f"{name}.__getitems__([0, ...]) disagrees with {name}[0]"
    if isinstance(split, EpochSplit):
        size = len(split)
        split.set_epoch(1)
        again = split[0]
        split.set_epoch(1)
        assert torch.equal(split[0]["y"], again["y"]), f"{name}.set_epoch(1) twice draws different pairs"
        split.set_epoch(0)
        assert len(split) == size, f"{name}.set_epoch changes the split's length"
    if isinstance(split, SampledSplit):
        sampler = split.batch_sampler(2, drop_last=True)
        assert isinstance(sampler, EpochBatchSampler), f"{name}.batch_sampler() has no set_epoch / __iter__"
        sampler.set_epoch(0)
        seen = [i for b in sampler for i in b]
        assert len(seen) == len(set(seen)) and all(0 <= i < len(split) for i in seen), f"{name}: bad sampler indices"
    if isinstance(split, IndexedSplit):
        for index in (split.x_index, split.y_index):
            ok = isinstance(index, Tensor) and index.shape == (len(split),) and not index.is_floating_point()
            assert ok, f"{name}.x_index / y_index must be integer tensors of shape [{len(split)}]"
    if isinstance(split, BankedSplit):
        x_row, y_row = split.x_index[:1], split.y_index[:1]
        assert torch.equal(split.transform(split.x[x_row])[0], first["x"]), f"{name}: x bank row is not {name}[0].x"
        assert torch.equal(split.transform(split.y[y_row])[0], first["y"]), f"{name}: y bank row is not {name}[0].y"
        assert int(split.x_labels[x_row]) == first["x_label"], f"{name}: x_labels disagrees with {name}[0]"
        assert int(split.y_labels[y_row]) == first["y_label"], f"{name}: y_labels disagrees with {name}[0]"
    if isinstance(split, GallerySplit):
        items, labels = split.gallery()
        assert len(items) > 0 and tuple(items.shape[1:]) == tuple(provider.y_shape), f"{name}.gallery() items"
        assert tuple(torch.as_tensor(labels).shape) == (len(items),), f"{name}.gallery() needs one label per item"


def check_query_reader(reader: QueryReader, x_shape: tuple[int, ...]) -> None:
    """``read_x`` turns a square grey image file into x items ``[N, *x_shape]``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "query.png"
        Image.fromarray(np.full((64, 64), 200, dtype=np.uint8)).save(path)
        items = reader.read_x(path)
    assert items.ndim == len(x_shape) + 1 and tuple(items.shape[1:]) == x_shape and len(items) >= 1, (
        f"read_x gave shape {tuple(items.shape)}, want [N, *{list(x_shape)}]"
    )


def _random_batch(modality: Modality, n: int = BATCH) -> torch.Tensor:
    low, high = modality.value_range
    return torch.randn(n, *modality.shape).clamp(max(low, -1e6), min(high, 1e6))


def check_modality(modality: Modality) -> None:
    """Trunks give [B, out_features], decoders give the modality's shape, losses are per item."""
    batch = _random_batch(modality)
    for trunk in (modality.encoder_trunk(), modality.critic_trunk()):
        if isinstance(trunk, nn.Module):
            trunk.eval()  # BatchNorm in eval mode: a batch statistic must not hide a shape bug
        features = trunk(batch)
        assert features.shape == (BATCH, trunk.out_features), f"trunk output {tuple(features.shape)}"
    decoded = modality.decoder(7)(torch.randn(BATCH, 7))
    assert tuple(decoded.shape) == (BATCH, *modality.shape), f"decoder output {tuple(decoded.shape)}"
    loss = modality.reconstruction_loss(decoded, batch)
    assert loss.shape == (BATCH,), f"reconstruction_loss must be per item, got shape {tuple(loss.shape)}"
    assert torch.allclose(modality.reconstruction_loss(batch, batch), torch.zeros(BATCH), atol=1e-6)
    grid = modality.to_grid(batch, nrow=2)
    assert isinstance(grid, np.ndarray) and grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3


def check_model(model: BimodalModel) -> None:
    """The four induced distributions return full samples whose shapes agree with each other."""
    torch.manual_seed(0)
    joint = model.joint(BATCH)
    x, y = joint.require("x", "y")
    samples = {
        "joint": joint,
        "variational": model.variational(x, y),
        "x2y": model.x_to_y(x),
        "y2x": model.y_to_x(y),
    }
    for which, sample in samples.items():
        assert isinstance(sample, Sample), f"{which} must return a Sample"
        for var in VARIABLES:
            (t,) = sample.require(var)
            reference = getattr(joint, var)
            assert t.shape == reference.shape, (
                f"{which}.{var} has shape {tuple(t.shape)}, joint has {tuple(reference.shape)}"
            )
    assert model.encode_z(x=x).shape == joint.z.shape
    assert model.encode_u(joint.z, x).shape == joint.u.shape, "encode_u(z, x) must have the shape of u"
    assert model.encode_v(joint.z, y).shape == joint.v.shape, "encode_v(z, y) must have the shape of v"
    if isinstance(model, FeatureReuse):
        torch.manual_seed(1)
        plain = model.encode_z(x=x)
        with model.reusing_features():
            torch.manual_seed(1)
            first = model.encode_z(x=x)
            torch.manual_seed(1)
            again = model.encode_z(x=x)
        for reused in (first, again):
            assert torch.allclose(reused, plain, atol=1e-6), "reusing_features() changes what encode_z gives"


def check_estimator(estimator: RatioEstimator, x: Modality, y: Modality, latent: Mapping[str, int]) -> None:
    """Each head gives one finite log-ratio per item, and scalar losses and estimates."""
    assert estimator.heads, "an estimator needs at least one head"
    values = {"x": _random_batch(x), "y": _random_batch(y), **{k: torch.randn(BATCH, n) for k, n in latent.items()}}
    for head, variables in estimator.heads.items():
        p = Sample(**{v: values[v] for v in variables})
        q = Sample(**{v: values[v] + 1.0 for v in variables})
        log_ratio = estimator.log_ratio(head, p)
        assert log_ratio.shape == (BATCH,), f"head {head!r}: log_ratio shape {tuple(log_ratio.shape)}, want ({BATCH},)"
        assert torch.isfinite(log_ratio).all(), f"head {head!r}: non-finite log-ratio"
        features_p, features_q = estimator.features(p), estimator.features(q)
        if "x" in variables:
            assert features_p is not None, f"head {head!r} reads x and y, but features() returned None"
        again = estimator.log_ratio(head, p, features_p)
        assert again.shape == (BATCH,), f"head {head!r}: log_ratio with features has shape {tuple(again.shape)}"
        loss = estimator.critic_loss(again, estimator.log_ratio(head, q, features_q))
        assert loss.shape == () and torch.isfinite(loss), f"head {head!r}: critic_loss must be a finite scalar"


def check_objective_term(term: ObjectiveTerm, step: StepContext | None = None) -> None:
    """Heads and multiplier are declared right; on a ``step``, the losses are finite scalars."""
    assert isinstance(term.critic_heads, Mapping), "critic_heads must map head names to variables"
    for head, variables in term.critic_heads.items():
        ok = isinstance(variables, tuple) and variables and set(variables) <= set(VARIABLES)
        assert ok, f"head {head!r} reads {variables!r}; it must be a non-empty tuple of {VARIABLES}"
    assert term.multiplier in MULTIPLIERS, f"multiplier {term.multiplier!r} is not one of {MULTIPLIERS}"
    if step is None:
        return
    loss = term.generator_loss(step)
    assert loss.shape == () and torch.isfinite(loss), "generator_loss must be a finite scalar"
    critic = term.critic_loss(step)
    if not term.critic_heads:
        assert critic is None, "a term without critic_heads must return None from critic_loss"
        return
    assert isinstance(critic, CriticLoss), "a term with critic_heads returns a CriticLoss(loss, accuracy)"
    assert critic.loss.shape == () and torch.isfinite(critic.loss), "critic_loss().loss must be a finite scalar"
    assert 0 <= float(critic.accuracy) <= 1, f"critic_loss().accuracy is {float(critic.accuracy)}, not in [0, 1]"


def check_evaluator(evaluator: Evaluator, run: EvalContext | None = None) -> dict[str, float]:
    """On a ``run``, ``evaluate`` returns finite float metrics under non-empty keys (as ``wynerkit eval`` needs)."""
    assert isinstance(evaluator, Evaluator), "an evaluator needs an evaluate(run) method"
    if run is None:
        return {}
    generator = torch.Generator(run.device).manual_seed(run.seed)
    with drawing(run.model, generator):  # as wynerkit eval runs it: no autograd, eval mode, seeded
        metrics = check_metrics(type(evaluator).__name__, evaluator.evaluate(run))
    assert metrics, "evaluate(run) returned no metrics"
    return metrics


def training_step(
    host: PluginHost, model: BimodalModel, heads: Mapping[str, tuple[str, ...]], estimator: str = "adversarial-js"
) -> StepContext:
    """A step on a batch drawn from ``model``, with a built-in ``estimator`` for ``heads`` (none without heads)."""
    critic = None
    if heads:
        context = BuildContext(registry=host.registry)
        spec = SpecBuilder(host.registry).variant(host.registry.get("estimator", estimator))
        critic = context.build(
            spec.model_validate({"name": estimator}),
            x=model.x_modality,
            y=model.y_modality,
            latent=dict(model.latent),
            heads=dict(heads),
        )
    with torch.no_grad():
        x, y = model.joint(BATCH).require("x", "y")
    return TrainingStep(model, critic, Sample(x=x, y=y), torch.Generator().manual_seed(0))
