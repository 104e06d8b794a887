"""Evaluating a trained model: run evaluators and merge their metrics into the run's ``summary.json``.

An evaluator (a plugin component, see ``wynerkit.interfaces.Evaluator``) measures the EMA model of
a run and returns fixed keys mapped to floats. This module knows evaluators only through that
interface. It runs each one

- built and run under ``torch.no_grad()``, in eval mode, with torch's global RNG seeded from the
  run's seed (and restored afterwards), so every evaluator sees the same random stream whichever
  others run before it, evaluating never changes a training run's stream, and training's stream
  never changes an evaluation;
- on an ``EvalContext`` holding the model, the data, ``RUN_DIR/figures``, the device and the seed,
  where a training split that redraws its pairs per epoch (``set_epoch``) is a copy at epoch 0, so
  the end of ``wynerkit run`` and a later ``wynerkit eval`` of the same checkpoint see the same data
  and give the same numbers (the trainer's own split keeps its epoch);

then checks what it returned (string keys, finite ``float`` values, no key another evaluator
returned) and merges it into ``summary.json`` at once, read-modify-write with an atomic write under
a lock. Keys already in the file stay; an evaluator may only overwrite keys it wrote itself. An
evaluator that raises or returns bad values writes nothing; the others still run and are written,
and ``EvaluationFailed`` names every evaluator that failed.

``summary.json["evaluated"]`` records, per evaluator name, where its numbers came from: the
checkpoint (``latest``, ``best``), its training step, the UTC time, the params and the keys.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wynerkit.atomic import write_json_atomic
from wynerkit.components import BuildContext, Registry
from wynerkit.errors import UsageError, WynerkitError
from wynerkit.evaluation.trained_run import Which, checkpoint_dir, open_trained
from wynerkit.figures.panels import drawing
from wynerkit.interfaces import BimodalModel, DatasetProvider, EpochSplit, Evaluator, Split
from wynerkit.rundir.checkpoint import Checkpoint
from wynerkit.rundir.paths import RunDir
from wynerkit.spec.loading import load_spec
from wynerkit.spec.models import SpecBuilder

EVALUATED = "evaluated"
"""The summary key recording, per evaluator, the checkpoint, step, time, params and keys of its numbers."""
NO_EVALUATORS = (
    "no evaluators to run: the run's spec has no `evaluate:` list; pass --evaluator NAME "
    "(see `wynerkit plugins list`) or add `evaluate: [{{name: ...}}]` to {spec}"
)


@dataclass(frozen=True)
class RunEvalContext:
    """What every evaluator receives (implements ``wynerkit.EvalContext``)."""

    model: BimodalModel
    data: DatasetProvider
    figures_dir: Path
    device: torch.device
    seed: int


@dataclass(frozen=True)
class Origin:
    """Which weights were evaluated: ``latest`` or ``best`` and the training step they were saved at."""

    checkpoint: str
    step: int


class EvaluationFailed(WynerkitError):
    """Some evaluators failed; the metrics of the others are in ``summary.json`` (and in ``metrics``).

    ``failures`` maps each failed evaluator's label to one line naming it and the reason.
    """

    def __init__(self, failures: Mapping[str, str], metrics: Mapping[str, float], summary: Path) -> None:
        self.failures = dict(failures)
        self.metrics = dict(metrics)
        kept = f" and holds the {len(self.metrics)} new metrics of the others" if self.metrics else ""
        self.note = f"nothing of the failed evaluator(s) was written; {summary} keeps every earlier key{kept}"
        super().__init__("\n".join([*self.failures.values(), self.note]))


@dataclass
class _Collected:
    """Metrics gathered by one evaluation: key -> value and key -> the label of its evaluator."""

    metrics: dict[str, float] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def default_evaluator_spec(registry: Registry, name: str) -> Any:
    """The spec entry ``{name: NAME}`` of a registered evaluator, validated with its default params.

    Unknown names are a usage error that lists the registered evaluators.
    """
    component = registry.get("evaluator", name)
    try:
        return SpecBuilder(registry).variant(component).model_validate({"name": name})
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise UsageError(
            f"evaluator {name!r} has required params, so --evaluator cannot run it with defaults; "
            f"list it under `evaluate:` in the spec instead ({_first_line(exc)})"
        ) from None


def check_metrics(label: str, returned: object) -> dict[str, float]:
    """``returned`` as ``dict[str, float]``; a ValueError naming the evaluator and the key otherwise."""
    if not isinstance(returned, Mapping):
        raise ValueError(f"evaluator {label!r} must return a dict of str -> float, got {type(returned).__name__}")
    metrics: dict[str, float] = {}
    for key, value in returned.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"evaluator {label!r} returned the key {key!r}; keys must be non-empty strings")
        if key == EVALUATED:
            raise ValueError(f"evaluator {label!r} returned the key {key!r}, which summary.json reserves")
        if not isinstance(value, float):
            hint = " (convert it with float(...))" if isinstance(value, int | torch.Tensor | np.generic) else ""
            raise ValueError(
                f"evaluator {label!r} returned {type(value).__name__} for key {key!r}; values must be float{hint}"
            )
        if not math.isfinite(value):
            raise ValueError(f"evaluator {label!r} returned {value} for key {key!r}; values must be finite")
        metrics[key] = float(value)
    return metrics


def evaluate_model(
    run_dir: Path,
    context: RunEvalContext,
    registry: Registry,
    specs: Sequence[Any],
    origin: Origin,
) -> dict[str, float]:
    """Run each evaluator spec on ``context`` and merge each one's metrics into ``run_dir/summary.json``.

    Returns every new metric; raises ``EvaluationFailed`` after running all of them if any failed.
    """
    _read_summary(RunDir(run_dir).summary)  # refuse a broken summary.json before spending time on evaluators
    labels = _labels(specs)
    build = BuildContext(registry=registry, seed=context.seed, device=context.device)
    context.figures_dir.mkdir(parents=True, exist_ok=True)
    context = replace(context, data=_TrainAtEpochZero(context.data))
    collected = _Collected()
    for label, spec in zip(labels, specs, strict=True):
        try:
            metrics = _run_one(label, spec, build, context)
            _claim(label, metrics, collected)
            _merge(RunDir(run_dir).summary, spec, label, metrics, origin)
        except Exception as exc:  # noqa: BLE001 - one evaluator's failure must not lose the others' results
            collected.failures[label] = _describe(label, exc)
            continue
        collected.metrics.update(metrics)
        collected.owner.update(dict.fromkeys(metrics, label))
    if collected.failures:
        raise EvaluationFailed(collected.failures, collected.metrics, RunDir(run_dir).summary)
    return collected.metrics


def evaluate_run(
    run_dir: Path, registry: Registry, evaluators: Sequence[Any] | None = None, checkpoint: Which = "latest"
) -> dict[str, float]:
    """Evaluate one checkpoint's EMA model of a run; the spec's ``evaluate`` list when ``evaluators`` is None.

    ``evaluators`` are validated spec entries (``default_evaluator_spec`` makes one from a name).
    Returns the new metrics, which are also merged into ``run_dir/summary.json``.
    """
    path = checkpoint_dir(run_dir, checkpoint)  # a usage error for a non-run or a run without checkpoints
    if evaluators is None:
        evaluators = load_spec(RunDir(run_dir).spec, registry).spec.evaluate
    specs = list(evaluators)
    if not specs:
        raise UsageError(NO_EVALUATORS.format(spec=RunDir(run_dir).spec))
    step = Checkpoint.open(path).step
    parts = open_trained(run_dir, registry, checkpoint)
    context = eval_context(run_dir, parts.model, parts.data, parts.device, parts.spec.seed)
    return evaluate_model(run_dir, context, registry, specs, Origin(checkpoint, step))


def eval_context(
    run_dir: Path, model: BimodalModel, data: DatasetProvider, device: torch.device, seed: int
) -> RunEvalContext:
    """The context evaluators of a run see: figures go to ``run_dir/figures``."""
    return RunEvalContext(model=model, data=data, figures_dir=RunDir(run_dir).figures, device=device, seed=seed)


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The run's ``summary.json`` (empty when there is none yet); a clear error when it is not a JSON object."""
    return _read_summary(RunDir(run_dir).summary)


# -- one evaluator ----------------------------------------------------------------------------------------


class _TrainAtEpochZero:
    """The run's data as evaluators see it: a training split with ``set_epoch`` is a copy set to epoch 0.

    A freshly built provider (``wynerkit eval``) and one the trainer left at its last epoch (the end of
    ``wynerkit run``) then give the same pairs. The copy is shallow: it shares the items, and the
    trainer's split keeps its epoch, so evaluating between training steps changes nothing it draws.
    """

    def __init__(self, data: DatasetProvider) -> None:
        self._data = data
        self._train: Any = None

    def split(self, name: Split) -> Any:
        split = self._data.split(name)
        if name != "train" or not isinstance(split, EpochSplit):
            return split
        if self._train is None:
            self._train = copy.copy(split)
            self._train.set_epoch(0)
        return self._train

    # Only the DatasetProvider members: an evaluator asks the data for nothing undeclared.
    @property
    def x_shape(self) -> tuple[int, ...]:
        return self._data.x_shape

    @property
    def y_shape(self) -> tuple[int, ...]:
        return self._data.y_shape

    def describe(self) -> dict[str, Any]:
        return self._data.describe()


def _run_one(label: str, spec: Any, build: BuildContext, context: RunEvalContext) -> dict[str, float]:
    generator = torch.Generator(context.device).manual_seed(context.seed)
    with drawing(context.model, generator):  # the factory too: one that draws must not see training's RNG state
        evaluator = build.build(spec)
        if not isinstance(evaluator, Evaluator):
            raise TypeError(f"its factory returned {type(evaluator).__name__}, which has no evaluate(run) method")
        returned = evaluator.evaluate(context)
    return check_metrics(label, returned)


def _claim(label: str, metrics: Mapping[str, float], collected: _Collected) -> None:
    for key in metrics:
        if key in collected.owner:
            raise ValueError(
                f"evaluators {collected.owner[key]!r} and {label!r} both return the key {key!r}; "
                "keys must be unique across the evaluators of one evaluation"
            )


def _labels(specs: Sequence[Any]) -> list[str]:
    """Evaluator names, with their position in the list added where a name occurs twice."""
    names = [spec.name for spec in specs]
    return [name if names.count(name) == 1 else f"{name}#{i}" for i, name in enumerate(names)]


def _describe(label: str, exc: Exception) -> str:
    """One line: the checks' own messages already name the evaluator; anything else gets its type."""
    message = str(exc)
    if isinstance(exc, ValueError) and message.startswith(("evaluator ", "evaluators ")):
        return message
    return f"evaluator {label!r} failed: {type(exc).__name__}: {message}"


def _first_line(exc: Exception) -> str:
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


# -- summary.json -----------------------------------------------------------------------------------------


def _read_summary(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise WynerkitError(f"{path} is not valid JSON ({exc}); fix or remove it before evaluating") from None
    if not isinstance(summary, dict):
        raise WynerkitError(f"{path} holds a JSON {type(summary).__name__}, not an object; fix or remove it")
    return summary


def _merge(path: Path, spec: Any, label: str, metrics: Mapping[str, float], origin: Origin) -> None:
    """Add one evaluator's metrics to summary.json, keeping every other key."""
    with _locked(path):
        summary = _read_summary(path)
        evaluated = summary.get(EVALUATED, {})
        if not isinstance(evaluated, dict):
            raise WynerkitError(f"{path}: {EVALUATED!r} is not an object; fix or remove it")
        owners = {key: name for name, entry in evaluated.items() for key in entry.get("keys", [])}
        for key in metrics:
            if key in summary and owners.get(key) != spec.name:
                written_by = f"evaluator {owners[key]!r}" if key in owners else "training"
                raise ValueError(
                    f"evaluator {label!r} returned the key {key!r}, which {path.name} already holds from {written_by}"
                )
        evaluated[spec.name] = {
            "checkpoint": origin.checkpoint,
            "step": origin.step,
            "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "params": spec.model_dump(mode="json", exclude={"name"}),
            "keys": sorted(metrics),
        }
        write_json_atomic(path, {**summary, **metrics, EVALUATED: evaluated})


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s lock file (POSIX), so two evaluations never lose each other's keys."""
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): the atomic write still keeps the file whole
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


__all__ = [
    "EVALUATED",
    "EvaluationFailed",
    "Origin",
    "RunEvalContext",
    "check_metrics",
    "default_evaluator_spec",
    "eval_context",
    "evaluate_model",
    "evaluate_run",
    "read_summary",
]
