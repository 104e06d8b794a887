"""``objective.terms`` in a spec: each registered term's weight, or its weight and params.

An entry is a bare weight (``D_joint: 1``: the term's default params) or ``{weight: w, <params>}``
(``IIAE: {weight: 1, beta: 0.5}``), its params validated against the params model the term was
registered with. A bare weight stays a number after validation, so a spec written before terms took
params resolves (and hashes) exactly as it did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter, ValidationError, WithJsonSchema, create_model
from pydantic_core import InitErrorDetails, PydanticCustomError

from wynerkit.components import Component, ComponentParams, Registry

Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]
WEIGHT = TypeAdapter(Weight)
ENTRY_SCHEMA = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "object", "required": ["weight"]}]}


def term_entry_model(component: Component) -> type[BaseModel]:
    """``{weight: w, <params>}`` of one term: its params model plus a required ``weight``."""
    bases = (component.params,) if component.params is ComponentParams else (component.params, ComponentParams)
    return create_model(
        f"TermEntry_{component.name}",
        __base__=bases,
        weight=(Weight, Field(description=f"weight of {component.name} in the generator's loss")),
    )


def terms_type(registry: Registry, names: Any) -> Any:
    """The type of ``objective.terms``: term name (``names``, a Literal) -> weight or ``{weight: w, <params>}``."""
    entries = {c.name: term_entry_model(c) for c in registry.of_kind("objective_term")}

    def validate(terms: dict[str, Any]) -> dict[str, Any]:
        problems: list[InitErrorDetails] = []
        valid = {name: _entry(name, value, entries[name], problems) for name, value in terms.items()}
        if problems:
            raise ValidationError.from_exception_data("objective.terms", problems)
        return valid

    return Annotated[dict[names, Annotated[Any, WithJsonSchema(ENTRY_SCHEMA)]], AfterValidator(validate)]


def _entry(name: str, value: Any, model: type[BaseModel], problems: list[InitErrorDetails]) -> Any:
    """One validated entry (a float, or an instance of ``model``); its problems go to ``problems``."""
    try:
        if isinstance(value, Mapping):
            return model.model_validate(value)
        weight = WEIGHT.validate_python(value)
    except ValidationError as exc:
        problems.extend(_located(name, err, model) for err in exc.errors(include_url=False))
        return value
    missing = [field for field, info in model.model_fields.items() if field != "weight" and info.is_required()]
    if missing:
        message = f"term {name} needs params ({', '.join(missing)}): write {{weight: {weight:g}, ...}}"
        problems.append(InitErrorDetails(type=PydanticCustomError("term_params", message), loc=(name,), input=value))
    return weight


def _located(name: str, err: Any, model: type[BaseModel]) -> InitErrorDetails:
    """An entry's error under ``objective.terms.<name>``; an unknown param lists the ones the term takes."""
    loc = (name, *err["loc"])
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(model.model_fields)
        message = f"unknown field {err['loc'][-1]!r}; term {name} takes: {allowed}"
        return InitErrorDetails(type=PydanticCustomError("term_params", message), loc=loc, input=err["input"])
    details = InitErrorDetails(type=err["type"], loc=loc, input=err["input"])
    if "ctx" in err:
        details["ctx"] = err["ctx"]
    return details


__all__ = ["Weight", "term_entry_model", "terms_type"]
