"""The run spec: pydantic models whose component fields are unions built from the registry.

Every component entry is ``{name: <registered name>, ...params}``. For each registered component
the builder derives a *variant* model (its params model plus ``name: Literal[<name>]``) and joins
the variants of a kind into a discriminated union on ``name``. Params fields marked with
``Ref(kind)`` (e.g. a model's two modalities) become that kind's union too, so nested
components are validated exactly like top-level ones.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PositiveFloat,
    PositiveInt,
    create_model,
    model_validator,
)

from wynerkit.components import SPEC_MODEL_CONFIG, Component, ComponentParams, Ref, Registry
from wynerkit.spec.objective_terms import terms_type

DatasetSpec = Annotated[Any, Ref("dataset")]
ModalitySpec = Annotated[Any, Ref("modality")]
EstimatorSpec = Annotated[Any, Ref("estimator")]
ModelSpec = Annotated[Any, Ref("model")]
EvaluatorSpec = Annotated[Any, Ref("evaluator")]
"""Field types for params that hold a nested component, e.g. ``x: ModalitySpec``."""

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class StrictModel(BaseModel):
    model_config = SPEC_MODEL_CONFIG


class CheckpointSpec(StrictModel):
    """When checkpoints are written and how many are kept."""

    every: PositiveInt = Field(500, description="write a checkpoint every this many steps (and at the end)")
    keep_last: PositiveInt = Field(2, description="keep this many most recent checkpoints (plus the best)")
    valid_batches: PositiveInt = Field(
        8, description="validation batches scored at each checkpoint to pick the best one (lowest valid.loss)"
    )


class TrainSpec(StrictModel):
    """Training budget and optimiser settings (consumed by the trainer)."""

    epochs: PositiveInt | None = Field(10, description="passes over the training split")
    max_steps: PositiveInt | None = Field(None, description="iterations; training stops at whichever budget ends first")
    batch_size: PositiveInt = 64
    lr: PositiveFloat = Field(1.0e-4, description="Adam learning rate of the generator (model)")
    critic_lr: PositiveFloat | None = Field(None, description="Adam learning rate of the critic; default: lr")
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.5, 0.999)
    amsgrad: bool = True
    ema: Annotated[float, Field(ge=0, lt=1, description="decay of the EMA of generator weights used to evaluate")] = (
        0.999
    )
    critic_steps: PositiveInt = Field(1, description="critic updates per iteration (on the iteration's samples)")
    generator_steps: PositiveInt = Field(1, description="generator updates per iteration")
    grad_clip: PositiveFloat | None = Field(None, description="clip each network's gradient norm to this value")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="bf16: forward passes under bfloat16 autocast (weights, optimiser state and checkpoints stay "
        "float32); auto: bf16 on CUDA GPUs with native bf16 arithmetic "
        "(compute capability 8+), fp32 elsewhere, CPUs included (so a spec learns the same model on every CPU)",
    )
    channels_last: bool | Literal["auto"] = Field(
        "auto",
        description="keep the networks' 4-D weights and the image batches in channels-last (NHWC) memory: the same "
        "numbers, a layout some convolution kernels run faster on; auto: on with bf16 on CUDA, off elsewhere",
    )
    compile: bool | Literal["auto"] = Field(
        "auto",
        description="torch.compile the networks of the model and the critic (their nn.Sequential parts: trunks, "
        "decoders, head bodies); the first steps pay the compilation; auto: on CUDA only",
    )
    log_every: PositiveInt = Field(50, description="write averaged metrics to metrics.jsonl every this many steps")
    checkpoint: CheckpointSpec = CheckpointSpec()

    @model_validator(mode="after")
    def _some_budget(self) -> TrainSpec:
        if self.epochs is None and self.max_steps is None:
            raise ValueError("set epochs or max_steps: training needs a budget")
        return self


class RunSpecBase(StrictModel):
    """The fields of a run spec that do not depend on the registered plugins."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="run name; also a directory name")]
    seed: Annotated[int, Field(ge=0)] = 0
    train: TrainSpec = TrainSpec()


class SpecBuilder:
    """Builds the spec model for one registry (the set of loaded plugins)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._unions: dict[str, Any] = {}
        self._variants: dict[tuple[str, str], type[BaseModel]] = {}
        self._building: set[tuple[str, str]] = set()

    def union(self, kind: str) -> Any:
        """The discriminated union of every registered component of ``kind``."""
        if kind not in self._unions:
            variants = [self.variant(c) for c in self.registry.of_kind(kind)]
            if not variants:
                self._unions[kind] = _nothing_registered(kind)
            else:
                self._unions[kind] = Annotated[reduce(or_, variants), Field(discriminator="name")]
        return self._unions[kind]

    def variant(self, component: Component) -> type[BaseModel]:
        key = (component.kind, component.name)
        if key in self._variants:
            return self._variants[key]
        if key in self._building:
            raise TypeError(f"{component.kind} {component.name!r}: params refer back to themselves")
        self._building.add(key)
        fields: dict[str, Any] = {"name": (Literal[component.name], Field(description=component.summary))}
        for field_name, info in component.params.model_fields.items():
            ref = next((m for m in info.metadata if isinstance(m, Ref)), None)
            if ref is not None:
                default = {} if info.is_required() else {"default": info.default}
                fields[field_name] = (self.union(ref.kind), Field(description=info.description, **default))
        # ComponentParams comes last so its config wins: a plugin's own params model (a plain
        # BaseModel, or one that allows inf/NaN) still gets finite numbers only in a spec.
        bases = (component.params,) if component.params is ComponentParams else (component.params, ComponentParams)
        model = create_model(_class_name(component), __base__=bases, **fields)
        model.component_kind = component.kind  # type: ignore[attr-defined]
        self._building.discard(key)
        self._variants[key] = model
        return model

    def objective_model(self) -> type[BaseModel]:
        names = self.registry.names("objective_term")
        term = Literal[tuple(names)] if names else _nothing_registered("objective_term")
        weight = Annotated[float, Field(ge=0)]
        return create_model(
            "ObjectiveSpec",
            __base__=StrictModel,
            lambda_ci=(weight, Field(1.0, description="multiplies the common-information terms I_*")),
            lambda_rec=(weight, Field(1.0, description="multiplies the reconstruction terms R_*")),
            terms=(
                terms_type(self.registry, term),
                Field(description="term name -> weight in the generator's loss, or {weight: w, <params>}"),
            ),
            critic_terms=(
                list[term] | None,  # type: ignore[valid-type]
                Field(None, description="terms whose critics train; default: every weighted term with a critic"),
            ),
        )

    def run_spec_model(self) -> type[RunSpecBase]:
        return create_model(
            "RunSpec",
            __base__=RunSpecBase,
            data=(self.union("dataset"), ...),
            model=(self.union("model"), ...),
            estimator=(self.union("estimator") | None, None),
            objective=(self.objective_model() | None, None),
            evaluate=(list[self.union("evaluator")], []),  # type: ignore[misc]
        )


def _nothing_registered(kind: str) -> Any:
    def refuse(value: Any) -> Any:
        raise ValueError(f"no {kind} is registered: install or unblock a plugin that provides one")

    return Annotated[Any, BeforeValidator(refuse)]


def _class_name(component: Component) -> str:
    words = "".join(ch if ch.isalnum() else " " for ch in component.name).title().replace(" ", "")
    return f"{component.kind.title().replace('_', '')}{words}"


def build_run_spec_model(registry: Registry) -> type[RunSpecBase]:
    """The pydantic model of a whole run spec under the given registry."""
    return SpecBuilder(registry).run_spec_model()


__all__ = [
    "DatasetSpec",
    "EstimatorSpec",
    "EvaluatorSpec",
    "ModalitySpec",
    "ModelSpec",
    "RunSpecBase",
    "SpecBuilder",
    "TrainSpec",
    "CheckpointSpec",
    "build_run_spec_model",
]
