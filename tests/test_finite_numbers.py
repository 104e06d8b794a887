"""Finite numbers only: every float field of every spec model refuses inf and NaN."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.components import Component, Registry
from wynerkit.spec.models import SpecBuilder, build_run_spec_model
from wynerkit.spec.objective_terms import term_entry_model

TINY = Path(__file__).parent / "specs" / "tiny.yaml"
NOT_FINITE = (math.inf, -math.inf, math.nan, "1e400", "-inf", "nan")


def models_in(tp: Any, seen: dict[str, type[BaseModel]]) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from ``tp`` through field types, unions and generics, by class name."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp.__name__ in seen:
            return seen
        seen[tp.__name__] = tp
        for field in tp.model_fields.values():
            models_in(field.annotation, seen)
            for meta in field.metadata:
                models_in(meta, seen)
        return seen
    for arg in get_args(tp):
        models_in(arg, seen)
    return seen


Put = Callable[[Any], Any]


def float_slots(schema: dict[str, Any]) -> Iterator[Put]:
    """For each number inside a field's JSON schema, a function placing a value there in an otherwise valid input."""
    if schema.get("type") == "number":
        yield lambda value: value
    for option in schema.get("anyOf", []):
        yield from float_slots(option)
    if isinstance(schema.get("items"), dict):
        for put in float_slots(schema["items"]):
            yield lambda value, put=put: [put(value)]
    prefix = schema.get("prefixItems", [])
    for i, item in enumerate(prefix):
        for put in float_slots(item):
            yield lambda value, put=put, i=i: [put(value) if j == i else 0.5 for j in range(len(prefix))]
    if isinstance(schema.get("additionalProperties"), dict):
        key = schema.get("propertyNames", {}).get("enum", ["key"])[0]
        for put in float_slots(schema["additionalProperties"]):
            yield lambda value, put=put, key=key: {key: put(value)}


def refuses(model: type[BaseModel], field: str, entry: Any) -> bool:
    """Whether validating ``{field: entry}`` gives a finite-number error at ``field``."""
    try:
        model.model_validate({field: entry})
    except ValidationError as exc:
        return any(e["type"] == "finite_number" and e["loc"][:1] == (field,) for e in exc.errors())
    return False


def test_every_float_field_of_every_registered_component_refuses_inf_and_nan(builtin_host):
    models = models_in(build_run_spec_model(builtin_host.registry), {})
    reached = {
        (m.component_kind, m.model_fields["name"].annotation.__args__[0])
        for m in models.values()
        if hasattr(m, "component_kind")
    }
    # the walk covers every component a spec holds (objective terms appear by name, data sources not at all)
    in_specs = {(c.kind, c.name) for c in builtin_host.registry if c.kind not in ("objective_term", "data_source")}
    assert reached == in_specs
    # an objective term's entry {weight: w, <params>}: its params model plus the weight
    entries = [term_entry_model(c) for c in builtin_host.registry.of_kind("objective_term")]
    models.update({entry.__name__: entry for entry in entries})
    checked, accepted = set(), []
    for name, model in models.items():
        for field, schema in model.model_json_schema()["properties"].items():
            for put in float_slots(schema):
                checked.add(f"{name}.{field}")
                accepted += [(name, field, bad) for bad in NOT_FINITE if not refuses(model, field, put(bad))]
    assert accepted == []
    # the walk is not vacuous: it reached the fields of the issue and numbers inside tuples and mappings
    assert {
        "TrainSpec.lr",
        "TrainSpec.critic_lr",
        "TrainSpec.grad_clip",
        "TrainSpec.betas",
        "ObjectiveSpec.terms",
    } <= checked
    assert {"EstimatorAdversarialJs.instance_noise", "TermEntry_IIAE.beta", "TermEntry_D_joint.weight"} <= checked
    assert len(checked) > 20


class LooseParams(BaseModel):
    """A third-party params model that is a plain BaseModel allowing inf and NaN."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=True)
    noise: float = 0.1


def test_a_plugin_s_own_params_model_cannot_let_inf_into_a_spec():
    registry = Registry()
    registry.add(Component("dataset", "loose", lambda *a: None, LooseParams, "loose", "third-party", "1.0"))
    variant = SpecBuilder(registry).variant(registry.get("dataset", "loose"))
    assert variant.model_validate({"name": "loose", "noise": 0.5}).noise == 0.5
    assert refuses(variant, "noise", math.inf) and refuses(variant, "noise", math.nan)


@pytest.mark.parametrize(
    ("assignment", "path"),
    [
        ("train.lr=1e400", "train.lr"),
        ("train.lr=.inf", "train.lr"),
        ("train.critic_lr=.nan", "train.critic_lr"),
        ("train.grad_clip=.inf", "train.grad_clip"),
        ("train.lr='1e400'", "train.lr"),
        ("objective.terms.D_joint=.inf", "objective.terms.D_joint"),
        ("estimator.instance_noise=.nan", "estimator.instance_noise"),
    ],
)
def test_spec_validate_refuses_a_non_finite_override_in_one_line(builtin_host, assignment, path):
    result = CliRunner().invoke(build_app(builtin_host), ["spec", "validate", str(TINY), "--set", assignment])
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"--set {assignment}: {path}: Input should be a finite number")
