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
declared shapes, models return full samples, estimators give one log-ratio per item.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch

from wynerkit.components import BuildContext
from wynerkit.errors import PluginLoadError
from wynerkit.interfaces import INTERFACE_OF, BimodalModel, DatasetProvider, Modality, RatioEstimator
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit.sample import VARIABLES, Sample
from wynerkit.spec import SpecBuilder

BATCH = 5


def load_plugin(plugin: object, name: str = "plugin-under-test", *, with_builtins: bool = True) -> PluginHost:
    """A host with the built-in plugins and ``plugin``; raises if ``plugin`` failed to load."""
    sources = discover(builtin_only=True) if with_builtins else []
    host = PluginHost.load([*sources, PluginSource.from_object(name, plugin)], blocked=())
    if host.errors:
        raise PluginLoadError("; ".join(str(e) for e in host.errors))
    return host


def check_component(
    host: PluginHost, kind: str, name: str, spec: Mapping[str, Any] | None = None, *, seed: int = 0, **kind_args: Any
) -> Any:
    """Validate, build and exercise one component; returns the built object."""
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
    with pytest.raises(ValueError, match="split"):
        provider.split("nonsense")  # type: ignore[arg-type]


def _random_batch(modality: Modality, n: int = BATCH) -> torch.Tensor:
    low, high = modality.value_range
    return torch.randn(n, *modality.shape).clamp(max(low, -1e6), min(high, 1e6))


def check_modality(modality: Modality) -> None:
    """Trunks give [B, out_features], decoders give the modality's shape, losses are per item."""
    batch = _random_batch(modality)
    for trunk in (modality.encoder_trunk(), modality.critic_trunk()):
        if hasattr(trunk, "eval"):
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
