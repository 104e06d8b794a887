"""Learning curves: coherence and Fréchet distance against training steps, per model, on a ladder of datasets.

The project's main quality benchmark. For each rung (dataset) x model (x variant) x seed it trains one
growing run with wynerkit's ``Trainer`` and, at each step target of ``--steps``, evaluates the EMA model
(as ``wynerkit run`` does after training) with the ``coherence`` evaluator (``coherence.x2y``,
``coherence.y2x``, ``coherence.joint`` and the digit classifiers' own test accuracies) and the ``fd``
evaluator (``fd.x2y``, ``fd.y2x``, ``fd.joint``), both built through the plugin registry. Evaluation
settings: ``--max-test-pairs`` (coherence; default all test pairs), ``--joint-samples`` (coherence and fd;
default the evaluators' 16,384), ``--fd-conditions-per-class 8`` and ``--fd-samples-per-condition 64``
(the CPU-feasible settings of docs/metrics.md; the paper's 32 and 2,048 are a GPU setting). Every row
records them (``eval``); FDs are comparable only between rows with the same settings.

Rungs (each a spec, the model's overlay applied on top as ``wynerkit sweep --baseline`` applies it):

- ``quickstart``: ``specs/quickstart.yaml`` (embedded MNIST x SynDigits, the generated stand-in for SVHN).
- ``mnist-mnist``: ``specs/mnist-mnist.yaml`` (embedded MNIST on both sides).
- ``mnist-syndigits-full``: ``specs/quickstart.yaml`` with ``--set data.source=full`` (full MNIST from
  the data root x SynDigits): the quickstart's model and objective on the full data, built from the
  quickstart spec itself so the two cannot drift apart. Needs ``WYNERKIT_DATA`` (``mnist/`` in it).

The ``gaussian`` rung (Gaussian pairs) has no labels, hence no coherence: it is not measured here (the
training / checkpoint / resume part of this script is tested on the Gaussian spec ``tests/specs/tiny.yaml``
in ``tests/test_learning_curves.py``).

Models: ``variational-wyner`` (the spec as it is), ``wyner-degenerate-local``
(``specs/overlays/degenerate-local.yaml``), ``iiae`` (``specs/overlays/iiae.yaml``). ``--set KEY=VALUE``
(repeatable, applied before the overlay, as in a sweep) measures an A/B variant, named by ``--label``
(required with ``--set``; the row's ``variant``, the overrides its ``overrides``); a ``--label`` alone
names a variant of the code (e.g. before / after a change to a plugin). Training is forced to
``train.precision=fp32``, ``train.epochs=null`` and ``train.max_steps`` = the largest target (the
trainer's total is then set to each target in turn).

Runs live in ``runs/learning-curves/<rung>/<model>[-<variant>]/seed<k>/`` (``--out`` changes the root):
ordinary run directories with a checkpoint at every target, the EMA weights of every target
(``ema/step-N.safetensors``), ``walls.json`` (cumulative training seconds at each checkpoint) and
``points.json`` (the evaluations done). A later invocation resumes the run (``Trainer.resume()``) and
trains only to the new targets; wynerkit's exact resume makes that give the same numbers as one straight
run, and evaluation never touches the training stream (evaluators run under a forked, seeded RNG).
Targets already evaluated with the same evaluator settings are not evaluated again; targets behind the
run's checkpoint are evaluated from their kept EMA weights. A run directory trained with another spec
is refused (delete it, or pass another ``--label`` / ``--out``).

Writes ``benchmarks/results/learning_curves.json`` (``{"machine": {...}, "rows": [...]}``, one row per
(rung, model, variant, seed, steps); ``--update``, the default, keeps the rows of other keys),
``learning_curves.md`` (a table per rung, means over seeds) and ``learning_curves.png`` (coherence
against steps, a row of panels per rung). Rows of ``benchmarks/results/peers.json`` (JMVAE / MMVAE from
``benchmarks/peer_multivae.py``) are shown in the table and (dashed) in the plot. ``wall_s`` is the
cumulative training time up to the row's step (validation and checkpoints included, evaluations
excluded), ``eval_s`` the time of that row's evaluation.

Run (one torch thread by default; ``--threads N`` for more)::

    WYNERKIT_DATA=../shared/data python benchmarks/learning_curves.py \\
        --rungs quickstart,mnist-mnist,mnist-syndigits-full --models variational-wyner,wyner-degenerate-local,iiae \\
        --steps 500,1000,2000,4000 --seeds 0 [--set objective.lambda_ci=0 --label no-ci] [--results DIR]

How long. Measured on the development machine: 2 cores of an AMD EPYC (no avx512_bf16 / AMX) shared with
other training runs (load average 5-8 while measuring), one torch thread, CPU, batch 64. One training step
(critic and generator update) took about 2.1 s for the quickstart's variational-wyner (wyner-degenerate-local
the same), 0.67 s for its iiae; 0.67 s / 0.14 s on mnist-mnist (MLPs on both sides); 2.6 s / 0.7 s on
mnist-syndigits-full; plus about 2 s per checkpoint (every 500 steps and at each target). The default
invocation (3 rungs x 3 models to 4,000 steps, one seed) is therefore about 14 hours of training there.
An evaluation with the defaults (all test pairs, 16,384 joint samples, fd at the CPU settings) took 35 s
on mnist-mnist (1,000 test pairs); 36 points add about half an hour, more on the full rung (more test
pairs). The first evaluation on a dataset trains its two digit classifiers (90 s for mnist-mnist; longer
on full MNIST), cached in the data root afterwards. The smoke run ``--rungs mnist-mnist --models
variational-wyner,iiae --steps 20,40 --max-test-pairs 200 --joint-samples 200`` took 3 minutes, half of
it the classifiers. An idle machine is several times faster (``benchmarks/results/throughput.json``:
0.28 s per quickstart variational-wyner step with 2 threads); a GPU far more.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from wynerkit.atomic import write_json_atomic, write_text_atomic
from wynerkit.components import Registry
from wynerkit.data_root import resolve_data_root
from wynerkit.datafiles import require_files
from wynerkit.errors import UsageError
from wynerkit.evaluation.evaluate import EvaluationFailed, Origin, eval_context, evaluate_model
from wynerkit.plugins import PluginHost, get_host
from wynerkit.rundir.checkpoint import load_weights, step_name
from wynerkit.rundir.paths import RunDir
from wynerkit.spec.models import SpecBuilder
from wynerkit.sweeps.baselines import read_baseline
from wynerkit.sweeps.cell_dirs import prepare_cell_dir, upgraded
from wynerkit.sweeps.grid import Axis
from wynerkit.sweeps.plan import PlannedCell, plan_sweep
from wynerkit.training.assembly import RunParts, assemble
from wynerkit.training.divergence import TrainingDiverged
from wynerkit.training.speedups import cpu_flags
from wynerkit.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNS = ROOT / "runs" / "learning-curves"
OVERLAYS = ROOT / "specs" / "overlays"
NAME = "learning_curves"
PEERS = RESULTS / "peers.json"


@dataclass(frozen=True)
class Rung:
    """A dataset of the ladder: a spec file and the ``--set`` overrides that make the rung from it."""

    name: str
    spec: Path
    overrides: tuple[str, ...] = ()


RUNGS = {
    "quickstart": Rung("quickstart", ROOT / "specs" / "quickstart.yaml"),
    "mnist-mnist": Rung("mnist-mnist", ROOT / "specs" / "mnist-mnist.yaml"),
    # the quickstart's model and objective on the full data: built from specs/quickstart.yaml, never a copy
    "mnist-syndigits-full": Rung(
        "mnist-syndigits-full", ROOT / "specs" / "quickstart.yaml", ("data.source=full", "name=quickstart-full")
    ),
}
NO_COHERENCE = {"gaussian": "Gaussian pairs have no labels, so no coherence; this script does not measure it"}
MODELS: dict[str, Path | None] = {
    "variational-wyner": None,
    "wyner-degenerate-local": OVERLAYS / "degenerate-local.yaml",
    "iiae": OVERLAYS / "iiae.yaml",
}
"""Model -> the overlay that turns a variational-wyner spec into it (None: the spec as it is)."""
FORCED_KEYS = ("train.precision", "train.epochs", "train.max_steps")
KEY_FIELDS = ("rung", "model", "variant", "seed", "steps")
COHERENCE = ("coherence.x2y", "coherence.y2x", "coherence.joint")
FD = ("fd.x2y", "fd.y2x", "fd.joint")
METRICS = (*COHERENCE, *FD, "classifier.x.test_accuracy", "classifier.y.test_accuracy")
LOGGED_PREFIXES = ("pairing.", "term.R_")
"""The last logged training values kept in a row: critic pairing gaps and the reconstruction terms."""
FD_CPU = {"conditions_per_class": 8, "samples_per_condition": 64}
"""The fd evaluator's conditional sample counts used by default (docs/metrics.md: CPU-feasible settings)."""
POINTS = "points.json"
WALLS = "walls.json"
EMA_DIR = "ema"
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}")


# -- planning ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """One growing run: a rung, a model (and variant), a seed, its validated spec and its run directory."""

    rung: str
    model: str
    variant: str | None
    overrides: tuple[str, ...]
    seed: int
    planned: PlannedCell
    run_dir: Path

    @property
    def spec(self) -> Any:
        return self.planned.spec

    @property
    def title(self) -> str:
        return f"{self.rung} {series_name(self.model, self.variant)} seed {self.seed}"


def forced(max_steps: int) -> list[str]:
    """What every curve's training is forced to: fp32, and a budget that never ends before the last target."""
    return ["train.precision=fp32", "train.epochs=null", f"train.max_steps={max_steps}"]


def check_sets(sets: Sequence[str], label: str | None) -> None:
    """``--set`` needs ``--label`` (it names the run directory and the rows) and may not touch forced keys."""
    problems = []
    if label is not None and not _LABEL.fullmatch(label):
        problems.append(f"--label {label}: use letters, digits and _ . + - (at most 40), starting with a letter/digit")
    if sets and label is None:
        problems.append("--set: name the variant it makes with --label NAME (its rows and run directories use it)")
    for assignment in sets:
        key = assignment.partition("=")[0].strip()
        if key in FORCED_KEYS:
            problems.append(f"--set {assignment}: {key} is set by this benchmark (fp32, trained to each target)")
    if problems:
        raise UsageError(problems)


def run_dir_for(out: Path, rung: str, model: str, variant: str | None, seed: int) -> Path:
    return out / rung / (f"{model}-{variant}" if variant else model) / f"seed{seed}"


def plan_curves(
    rungs: Sequence[Rung],
    models: Sequence[str],
    seeds: Sequence[int],
    steps: Sequence[int],
    registry: Registry,
    *,
    sets: Sequence[str] = (),
    label: str | None = None,
    out: Path = RUNS,
) -> list[Curve]:
    """Every curve's validated spec, through ``wynerkit sweep``'s planning: the rung's spec with its
    overrides, ``sets`` and the forced training keys, then the model's overlay, then the seed."""
    check_sets(sets, label)
    overlays = [read_baseline(path) for model in models if (path := MODELS[model]) is not None]
    curves, problems = [], []
    for rung in rungs:
        try:
            plan = plan_sweep(
                rung.spec,
                registry,
                [Axis("seed", tuple(seeds))],
                overlays,
                [*rung.overrides, *sets, *forced(max(steps))],
            )
        except UsageError as exc:
            problems += [f"rung {rung.name}: {line}" for line in exc.problems]
            continue
        for planned in plan.cells:
            overlay = planned.cell.baseline
            wanted = next(m for m, path in MODELS.items() if path == (overlay.path if overlay else None))
            if wanted not in models:
                continue
            made = planned.spec.model.name
            if made != wanted:
                problems.append(f"rung {rung.name}: {wanted}: the spec with --set and overlay trains {made!r}")
                continue
            seed = planned.spec.seed
            curves.append(
                Curve(
                    rung.name,
                    wanted,
                    label,
                    tuple(sets),
                    seed,
                    planned,
                    run_dir_for(out, rung.name, wanted, label, seed),
                )
            )
    if problems:
        raise UsageError(problems)
    return curves


def check_run_dirs(curves: Iterable[Curve]) -> None:
    """An existing run directory must hold the curve's spec (its ``train.max_steps`` aside)."""
    problems = []
    for curve in curves:
        recorded = curve.run_dir / "spec.resolved.json"
        if curve.run_dir.exists() and not curve.run_dir.is_dir():
            problems.append(f"{curve.run_dir}: is a file, not a run directory")
        if not recorded.is_file():
            continue
        before = upgraded(json.loads(recorded.read_text(encoding="utf-8")), curve.spec)
        changed = differences(before, curve.planned.resolved, ignore={"train.max_steps"})
        if changed:
            problems.append(
                f"{curve.title}: {curve.run_dir} was trained with another spec (differs in "
                f"{', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''}); delete it, or pass another "
                "--label or --out"
            )
    if problems:
        raise UsageError(problems)


def differences(before: Any, after: Any, path: str = "", ignore: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Dotted paths where two JSON values differ, except those in ``ignore``."""
    if path in ignore:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after))
        return [d for k in keys for d in differences(before.get(k), after.get(k), f"{path}.{k}" if path else k, ignore)]
    return [] if before == after else [path or "(root)"]


def require_data(curves: Iterable[Curve]) -> None:
    """Rungs that read the full MNIST need it under the data root: say so before training anything."""
    from wynerkit_plugins.shared.mnist_files import MNIST_SOURCE

    checked: set[Path] = set()
    for curve in curves:
        if getattr(curve.spec.data, "source", None) != "full":
            continue
        root = Path(getattr(curve.spec.data, "root", None) or resolve_data_root())
        if root in checked:
            continue
        try:
            require_files(MNIST_SOURCE, root)
        except UsageError as exc:
            raise UsageError(
                [
                    f"rung {curve.rung} reads the full MNIST from the data root {root}; set WYNERKIT_DATA to a "
                    "folder holding mnist/ (e.g. WYNERKIT_DATA=../shared/data) or download it there",
                    *exc.problems,
                ]
            ) from None
        checked.add(root)


# -- evaluation -------------------------------------------------------------------------------------


class Evaluation(Protocol):
    """What measures a model at a target: its settings (points evaluated with others are redone) and a call."""

    @property
    def settings(self) -> dict[str, Any]: ...

    def __call__(self, model: nn.Module, parts: RunParts, run_dir: Path, step: int) -> dict[str, float]: ...


@dataclass(frozen=True)
class RegistryEvaluation:
    """Evaluator specs built through the registry, run by ``wynerkit.evaluation.evaluate.evaluate_model``.

    Each point's ``summary.json`` (with the evaluators' params) goes to ``RUN_DIR/eval/step-N/``.
    """

    registry: Registry
    specs: tuple[Any, ...]

    @property
    def settings(self) -> dict[str, Any]:
        return {spec.name: spec.model_dump(mode="json", exclude={"name"}) for spec in self.specs}

    def __call__(self, model: nn.Module, parts: RunParts, run_dir: Path, step: int) -> dict[str, float]:
        step_dir = run_dir / "eval" / f"step-{step:08d}"
        context = eval_context(step_dir, model, parts.data, parts.device, parts.spec.seed)
        return evaluate_model(step_dir, context, self.registry, list(self.specs), Origin(f"step-{step:08d}", step))


def evaluator_spec(registry: Registry, name: str, **params: Any) -> Any:
    """The validated spec entry ``{name: NAME, **params}`` (params left None take the evaluator's defaults)."""
    component = registry.get("evaluator", name)
    given = {key: value for key, value in params.items() if value is not None}
    return SpecBuilder(registry).variant(component).model_validate({"name": name, **given})


def quality_evaluation(
    registry: Registry,
    *,
    max_test_pairs: int | None = None,
    joint_samples: int | None = None,
    conditions_per_class: int | None = FD_CPU["conditions_per_class"],
    samples_per_condition: int | None = FD_CPU["samples_per_condition"],
) -> RegistryEvaluation:
    """``coherence`` and ``fd``; ``joint_samples`` applies to both (None: each evaluator's default)."""
    coherence = evaluator_spec(registry, "coherence", max_test_pairs=max_test_pairs, joint_samples=joint_samples)
    fd = evaluator_spec(
        registry,
        "fd",
        joint_samples=joint_samples,
        conditions_per_class=conditions_per_class,
        samples_per_condition=samples_per_condition,
    )
    return RegistryEvaluation(registry, (coherence, fd))


# -- training ---------------------------------------------------------------------------------------


class TimedTrainer(Trainer):
    """The trainer, also recording the cumulative training seconds at every checkpoint (``walls.json``).

    Seconds count inside ``fit`` only (evaluations between targets are not training), carried over a
    resume from the value recorded with the checkpoint resumed from.
    """

    def __init__(self, parts: RunParts, run_dir: Path) -> None:
        super().__init__(parts, run_dir)
        self.walls = read_walls(run_dir / WALLS)
        self._clock: tuple[float, float] | None = None

    def resume(self) -> int:
        step = super().resume()
        self.walls = {s: w for s, w in self.walls.items() if s <= step}
        return step

    def fit(self) -> dict[str, Any]:
        self._clock = (time.perf_counter(), wall_at(self.walls, self.position.step))
        try:
            return super().fit()
        finally:
            self._clock = None

    def checkpoint(self) -> None:
        super().checkpoint()
        if self._clock is not None and self.cluster.is_main:
            started, before = self._clock
            self.walls[self.position.step] = round(before + time.perf_counter() - started, 3)
            write_json_atomic(self.paths.path / WALLS, {str(s): w for s, w in sorted(self.walls.items())})


def read_walls(path: Path) -> dict[int, float]:
    return {int(s): float(w) for s, w in json.loads(path.read_text()).items()} if path.is_file() else {}


def wall_at(walls: Mapping[int, float], step: int) -> float:
    """Training seconds up to ``step``: recorded there, else at the latest recorded step before it (0 at none)."""
    before = [s for s in walls if s <= step]
    return walls[max(before)] if before else 0.0


def ema_path(run_dir: Path, step: int) -> Path:
    return run_dir / EMA_DIR / f"step-{step:08d}.safetensors"


def keep_ema(run_dir: Path, step: int) -> None:
    """Keep the EMA weights of the checkpoint at ``step`` (a hard link: pruning the checkpoint keeps them)."""
    source = RunDir(run_dir).checkpoints / step_name(step) / "ema.safetensors"
    target = ema_path(run_dir, step)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # no hard links here (another file system): a copy
        target.write_bytes(source.read_bytes())


def last_logged(records: Sequence[Mapping[str, Any]], step: int) -> dict[str, float]:
    """The last training record at or before ``step``: its pairing gaps and reconstruction terms."""
    record = next((r for r in reversed(records) if "loss.generator" in r and r["step"] <= step), {})
    return {k: v for k, v in record.items() if k.startswith(LOGGED_PREFIXES)}


def read_points(run_dir: Path) -> dict[int, dict[str, Any]]:
    path = run_dir / POINTS
    return {int(s): p for s, p in json.loads(path.read_text()).items()} if path.is_file() else {}


def write_points(run_dir: Path, points: Mapping[int, Mapping[str, Any]]) -> None:
    write_json_atomic(run_dir / POINTS, {str(s): dict(p) for s, p in sorted(points.items())})


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats to ``digits`` decimals (non-finite ones, and anything else, as they are)."""
    return round(value, digits) if isinstance(value, float) and math.isfinite(value) else value


def make_row(
    curve: Curve, step: int, point: Mapping[str, Any], wall_s: float | None, logged: Mapping[str, float], machine: str
) -> dict[str, Any]:
    """One evaluated point as a result row."""
    spec = curve.spec
    metrics = point["metrics"]
    ordered = [k for k in METRICS if k in metrics] + sorted(k for k in metrics if k not in METRICS)
    return {
        "rung": curve.rung,
        "model": curve.model,
        "variant": curve.variant,
        "overrides": list(curve.overrides),
        "lambda_ci": None if curve.model == "iiae" or spec.objective is None else spec.objective.lambda_ci,
        "seed": curve.seed,
        "steps": step,
        "batch": spec.train.batch_size,
        "precision": spec.train.precision,
        "wall_s": None if wall_s is None else round(wall_s, 1),
        "eval_s": round(point["eval_s"], 1),
        **{key: rounded(metrics[key]) for key in ordered},
        **{key: rounded(value) for key, value in sorted(logged.items())},
        "eval": point["eval"],
        "machine": machine,
    }


def run_curve(
    curve: Curve,
    steps: Sequence[int],
    evaluation: Evaluation,
    host: PluginHost,
    *,
    machine: str = "",
    log: Callable[[str], None] = print,
    on_row: Callable[[dict[str, Any]], None] = lambda row: None,
) -> list[dict[str, Any]]:
    """Train ``curve`` to each target in turn (resuming its run directory) and evaluate its EMA model there."""
    run_dir = curve.run_dir
    if not (run_dir / "spec.yaml").is_file():
        prepare_cell_dir(run_dir, curve.planned, host)
    parts = assemble(curve.spec, host.registry)
    trainer = TimedTrainer(parts, run_dir)
    resumed = trainer.resume()
    log(f"{curve.title}: {'resuming from step ' + str(resumed) if resumed else 'training'} in {run_dir}")
    points = read_points(run_dir)
    rows = []
    for target in sorted(set(steps)):
        point = points.get(target)
        if point is None or point.get("eval") != evaluation.settings:
            if target > trainer.position.step:
                trainer.total = target
                trainer.fit()
                keep_ema(run_dir, target)
                model = trainer.ema.model
            elif ema_path(run_dir, target).is_file() or target == trainer.position.step:
                model = trainer.ema.model
                if target != trainer.position.step:
                    model = copy.deepcopy(model)
                    load_weights(model, ema_path(run_dir, target), "ema")
            else:
                log(
                    f"{curve.title}: step {target} skipped: the run is at step {trainer.position.step} and kept no "
                    f"weights of step {target} (delete {run_dir} to measure it)"
                )
                continue
            started = time.perf_counter()
            with torch.random.fork_rng(devices=_cuda_devices(parts.device)):  # evaluation never moves training's RNG
                metrics = evaluation(model, parts, run_dir, target)
            point = {"eval": evaluation.settings, "eval_s": time.perf_counter() - started, "metrics": metrics}
            points[target] = point
            write_points(run_dir, points)
        row = make_row(
            curve, target, point, wall_at(trainer.walls, target), last_logged(trainer.log.read(), target), machine
        )
        log(json.dumps({k: v for k, v in row.items() if k not in ("eval", "overrides", "machine")}))
        rows.append(row)
        on_row(row)
    return rows


def _cuda_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


# -- results ----------------------------------------------------------------------------------------


def row_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in KEY_FIELDS)


def _order(row: Mapping[str, Any]) -> tuple[Any, ...]:
    rungs = list(RUNGS)
    rung = row.get("rung")
    return (
        rungs.index(rung) if rung in rungs else len(rungs),
        str(rung),
        list(MODELS).index(row["model"]) if row.get("model") in MODELS else len(MODELS),
        str(row.get("model")),
        row.get("variant") or "",
        row.get("seed", 0),
        row.get("steps", 0),
    )


def merge_rows(old: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``old`` rows of keys ``new`` lacks, then ``new`` (the last of a key wins); sorted by rung, model, variant,
    seed and steps."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {row_key(r): dict(r) for r in old}
    merged.update((row_key(r), dict(r)) for r in new)
    return sorted(merged.values(), key=_order)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file (``{"rows": [...]}`` or a bare list); none when there is no file."""
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = data.get("rows", []) if isinstance(data, dict) else data
    return [row for row in rows if isinstance(row, dict) and {"rung", "model", "steps"} <= set(row)]


def series_name(model: str, variant: str | None) -> str:
    return f"{model}/{variant}" if variant else model


def _series(row: Mapping[str, Any]) -> str:
    return series_name(row["model"], row.get("variant"))


def _mean_sd(values: Sequence[float], digits: int) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def grouped(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, int], list[Mapping[str, Any]]]:
    """Rows by (rung, series, steps), seeds together, in row order."""
    groups: dict[tuple[str, str, int], list[Mapping[str, Any]]] = {}
    for row in sorted(rows, key=_order):
        groups.setdefault((row["rung"], _series(row), row["steps"]), []).append(row)
    return groups


TABLE_COLUMNS = (
    ("coherence.x2y", "coh x2y ↑", 3),
    ("coherence.y2x", "coh y2x ↑", 3),
    ("coherence.joint", "coh joint ↑", 3),
    ("fd.x2y", "FD x2y ↓", 1),
    ("fd.y2x", "FD y2x ↓", 1),
    ("fd.joint", "FD joint ↓", 1),
    ("wall_s", "train s", 0),
    ("eval_s", "eval s", 0),
)


def markdown(rows: Sequence[Mapping[str, Any]], peers: Sequence[Mapping[str, Any]], machine: Mapping[str, Any]) -> str:
    """A table per rung: a line per (model/variant, steps), means over seeds (± their sd with several)."""
    lines = [
        "# Learning curves: coherence and Fréchet distance against training steps",
        "",
        "Written by `benchmarks/learning_curves.py`: the EMA model of one growing fp32 run per (rung, model, "
        "variant, seed), evaluated at each step count with the `coherence` and `fd` evaluators. Means over seeds "
        "(± sd with several); `train s`: cumulative training seconds (evaluations excluded). Peer rows (from "
        "`peers.json`, other implementations) are marked *peer*.",
        "",
        f"Machine (latest invocation): {machine_label(machine)}.",
    ]
    everything = [*rows, *({**p, "_peer": True} for p in peers)]
    groups = grouped(everything)
    for rung in dict.fromkeys(key[0] for key in groups):
        lines += ["", f"## {rung}", ""]
        lines.append("| model | steps | seeds | " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " |")
        lines.append("| --- | ---: | ---: | " + " | ".join("---:" for _ in TABLE_COLUMNS) + " |")
        for (group_rung, series, steps), members in groups.items():
            if group_rung != rung:
                continue
            name = f"{series} *peer*" if members[0].get("_peer") else series
            cells = [
                _mean_sd([float(m[key]) for m in members if m.get(key) is not None], digits)
                for key, _, digits in TABLE_COLUMNS
            ]
            seeds = len({m.get("seed") for m in members})
            lines.append(f"| {name} | {steps} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Mapping[str, Any]], peers: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Coherence (x2y, y2x, joint) against steps: a row of panels per rung, a line per model/variant, peers dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    everything = [*rows, *({**p, "_peer": True} for p in peers)]
    groups = grouped(everything)
    rungs = list(dict.fromkeys(key[0] for key in groups))
    if not rungs:
        return
    names = list(dict.fromkeys(key[1] for key in groups))
    colors = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    fig, axes = plt.subplots(len(rungs), 3, figsize=(10, 2.6 * len(rungs)), squeeze=False, sharey=True)
    for r, rung in enumerate(rungs):
        for c, key in enumerate(COHERENCE):
            ax = axes[r][c]
            for name in names:
                points = [
                    (steps, statistics.fmean(float(m[key]) for m in members))
                    for (g_rung, g_name, steps), members in groups.items()
                    if g_rung == rung and g_name == name and all(m.get(key) is not None for m in members)
                ]
                if not points:
                    continue
                peer = any(m.get("_peer") for (g, n, _), ms in groups.items() if g == rung and n == name for m in ms)
                xs, ys = zip(*sorted(points), strict=True)
                ax.plot(xs, ys, "--" if peer else "-", marker="o", ms=3, color=colors[name], label=name)
            ax.axhline(0.1, color="grey", lw=0.6, ls=":")  # chance for ten digit classes
            ax.set_title(f"{rung}: {key}", fontsize=8)
            ax.set_ylim(0, 1)
            steps = [g[2] for g in groups if g[0] == rung]
            if max(steps) >= 4 * min(steps):  # doubling budgets: evenly spaced
                ax.set_xscale("log", base=2)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if r == len(rungs) - 1:
                ax.set_xlabel("training steps", fontsize=7)
        axes[r][0].legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def lscpu_model_name() -> str | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), None)


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    flags = cpu_flags()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "lscpu_model_name": lscpu_model_name(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": sorted(f for f in flags if f.startswith("amx")),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def machine_label(facts: Mapping[str, Any]) -> str:
    """A row's short machine: the CPU (or GPU) and the threads."""
    cpu = facts.get("lscpu_model_name") or facts.get("processor") or "unknown CPU"
    where = facts.get("cuda_device") or cpu
    return f"{where}, {facts.get('threads')} torch thread(s), {facts.get('cpu_count')} cores"


def write_results(directory: Path, rows: list[dict[str, Any]], peers: Sequence[Mapping[str, Any]]) -> Path:
    """``learning_curves.json``, ``.md`` and ``.png`` in ``directory``; returns the JSON's path."""
    directory.mkdir(parents=True, exist_ok=True)
    facts = machine()
    path = directory / f"{NAME}.json"
    write_text_atomic(path, json.dumps({"machine": facts, "rows": rows}, indent=2, allow_nan=False) + "\n")
    write_text_atomic(directory / f"{NAME}.md", markdown(rows, peers, facts))
    plot(rows, peers, directory / f"{NAME}.png")
    return path


# -- the command ------------------------------------------------------------------------------------


def _names(text: str, known: Mapping[str, Any], what: str, unsupported: Mapping[str, str] | None = None) -> list[str]:
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    for name in names:
        if unsupported and name in unsupported:
            raise argparse.ArgumentTypeError(f"{what} {name}: {unsupported[name]}")
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"choose {what}s from {', '.join(known)}; got {text!r}")
    return names


def _ints(text: str, *, least: int) -> list[int]:
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or values[0] < least:
        raise argparse.ArgumentTypeError(f"expected integers >= {least}, got {text!r}")
    return values


def _positive(text: str) -> int:
    return _ints(text, least=1)[0]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--rungs",
        type=lambda t: _names(t, RUNGS, "rung", NO_COHERENCE),
        default=list(RUNGS),
        help=f"comma-separated, from {', '.join(RUNGS)} (default all)",
    )
    p.add_argument(
        "--models",
        type=lambda t: _names(t, MODELS, "model"),
        default=list(MODELS),
        help=f"comma-separated, from {', '.join(MODELS)} (default all)",
    )
    p.add_argument("--steps", type=lambda t: _ints(t, least=1), default=[500, 1000, 2000, 4000], help="step targets")
    p.add_argument("--seeds", type=lambda t: _ints(t, least=0), default=[0], help="comma-separated seeds (default 0)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="spec override")
    p.add_argument("--label", default=None, help="the variant's name (required with --set)")
    p.add_argument("--out", type=Path, default=RUNS, help=f"run directories' root (default {RUNS.relative_to(ROOT)})")
    p.add_argument("--results", type=Path, default=RESULTS, help=f"output folder (default {RESULTS.relative_to(ROOT)})")
    p.add_argument("--peers", type=Path, default=PEERS, help=f"peer rows to show (default {PEERS.relative_to(ROOT)})")
    p.add_argument("--update", action=argparse.BooleanOptionalAction, default=True, help="keep rows of other keys")
    p.add_argument("--threads", type=_positive, default=1, help="torch threads (default 1)")
    p.add_argument("--max-test-pairs", type=_positive, default=None, help="coherence test pairs (default all)")
    p.add_argument("--joint-samples", type=_positive, default=None, help="joint samples of coherence and fd")
    p.add_argument("--fd-conditions-per-class", type=_positive, default=FD_CPU["conditions_per_class"])
    p.add_argument("--fd-samples-per-condition", type=_positive, default=FD_CPU["samples_per_condition"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    host = get_host()
    try:
        curves = plan_curves(
            [RUNGS[name] for name in args.rungs],
            args.models,
            args.seeds,
            args.steps,
            host.registry,
            sets=args.sets,
            label=args.label,
            out=args.out,
        )
        check_run_dirs(curves)
        require_data(curves)
        evaluation = quality_evaluation(
            host.registry,
            max_test_pairs=args.max_test_pairs,
            joint_samples=args.joint_samples,
            conditions_per_class=args.fd_conditions_per_class,
            samples_per_condition=args.fd_samples_per_condition,
        )
    except UsageError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    path = args.results / f"{NAME}.json"
    kept = read_rows(path) if args.update else []
    peers = read_rows(args.peers)
    label = machine_label(machine())
    done: list[dict[str, Any]] = []

    def record(row: dict[str, Any]) -> None:
        done.append(row)
        write_results(args.results, merge_rows(kept, done), peers)

    print(f"{len(curves)} curves to steps {','.join(map(str, args.steps))}; results in {args.results}", flush=True)
    failed = []
    for curve in curves:  # a diverged run or a failed evaluator ends its curve; the others still run
        try:
            run_curve(curve, args.steps, evaluation, host, machine=label, on_row=record, log=_log)
        except (TrainingDiverged, EvaluationFailed) as exc:
            failed.append(f"{curve.title}: {exc}")
            print(f"{curve.title}: stopped: {exc}", file=sys.stderr, flush=True)
        except UsageError as exc:
            for line in exc.problems:
                print(f"{curve.title}: {line}", file=sys.stderr)
            return 2
    print(f"wrote {path}, {path.with_suffix('.md')}, {path.with_suffix('.png')}", flush=True)
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    return 1 if failed else 0


def _log(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
