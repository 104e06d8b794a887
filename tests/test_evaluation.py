"""Evaluation: merging metrics into summary.json, failures that lose nothing, checks, `wynerkit eval`, end of run."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from typer.testing import CliRunner

from wynerkit import NoParams, hookimpl
from wynerkit.cli.app import build_app
from wynerkit.evaluation.evaluate import (
    EVALUATED,
    EvaluationFailed,
    Origin,
    RunEvalContext,
    check_metrics,
    default_evaluator_spec,
    evaluate_model,
    evaluate_run,
)
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit.runs.create import create_run_dir
from wynerkit.runs.training_run import train_run
from wynerkit.spec.loading import load_spec
from wynerkit_plugins.evaluators.reconstruction import KEYS as RECON_KEYS

TINY = Path(__file__).parent / "specs" / "tiny.yaml"
Behaviour = Callable[[Any], object]

# What the fake evaluators do; tests set entries (a module-level table, so one host serves every test).
BEHAVIOUR: dict[str, Behaviour] = {}
FAKES = ("a", "b", "c", "spy")


class Fake:
    def __init__(self, name: str) -> None:
        self.name = name

    def evaluate(self, run: Any) -> object:
        return BEHAVIOUR[self.name](run)


class FakePlugin:
    @hookimpl
    def wynerkit_register_evaluators(self, register):
        for name in FAKES:
            register(name, lambda params, context, name=name: Fake(name), params=NoParams, summary=f"fake {name}")


@pytest.fixture(scope="module")
def host() -> PluginHost:
    loaded = PluginHost.load(
        [*discover(builtin_only=True), PluginSource.from_object("fakes", FakePlugin())], blocked=()
    )
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return loaded


@pytest.fixture(autouse=True)
def _behaviour():
    BEHAVIOUR.clear()
    yield
    BEHAVIOUR.clear()


def returning(value: object) -> Behaviour:
    return lambda run: value


def raising(message: str) -> Behaviour:
    def fail(run: Any) -> object:
        raise RuntimeError(message)

    return fail


def train(root: Path, host: PluginHost, *overrides: str) -> Path:
    loaded = load_spec(TINY, host.registry, list(overrides))
    run_dir = create_run_dir(root / "runs", loaded.spec, loaded.source, host)
    train_run(run_dir, loaded.spec, host.registry)
    return run_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory, host) -> Path:
    """One tiny run (no `evaluate:` in its spec), trained once for the module."""
    return train(tmp_path_factory.mktemp("trained"), host)


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A private copy of the trained run."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def specs(host: PluginHost, *names: str) -> list[Any]:
    return [default_evaluator_spec(host.registry, name) for name in names]


# -- merging -------------------------------------------------------------------------------------------------


def test_metrics_are_merged_keeping_every_key_and_recording_where_they_came_from(host, run):
    before = summary(run)
    BEHAVIOUR.update(a=returning({"a.one": 1.0, "a.two": 2.5}), b=returning({"b.x": -3.0}))
    assert evaluate_run(run, host.registry, specs(host, "a")) == {"a.one": 1.0, "a.two": 2.5}
    assert evaluate_run(run, host.registry, specs(host, "b"), "best") == {"b.x": -3.0}
    after = summary(run)
    assert {k: after[k] for k in before} == before
    assert after["a.one"] == 1.0 and after["a.two"] == 2.5 and after["b.x"] == -3.0
    record = after[EVALUATED]
    assert set(record) == {"a", "b"}
    assert record["a"]["checkpoint"] == "latest" and record["a"]["step"] == 20
    assert record["b"]["checkpoint"] == "best" and record["b"]["step"] == before["best"]["step"]
    assert record["a"]["keys"] == ["a.one", "a.two"] and record["a"]["params"] == {}
    assert record["a"]["at"].endswith("Z")


def test_an_evaluator_run_again_replaces_its_own_keys(host, run):
    BEHAVIOUR["a"] = returning({"a.one": 1.0})
    evaluate_run(run, host.registry, specs(host, "a"))
    BEHAVIOUR["a"] = returning({"a.one": 7.0})
    evaluate_run(run, host.registry, specs(host, "a"))
    assert summary(run)["a.one"] == 7.0


def test_a_failing_evaluator_writes_nothing_and_loses_nothing(host, run):
    BEHAVIOUR.update(a=returning({"a.one": 1.0}), b=raising("out of memory halfway"), c=returning({"c.one": 3.0}))
    before = summary(run)
    with pytest.raises(EvaluationFailed) as failed:
        evaluate_run(run, host.registry, specs(host, "a", "b", "c"))
    assert list(failed.value.failures) == ["b"]
    assert "evaluator 'b' failed: RuntimeError: out of memory halfway" in str(failed.value)
    assert failed.value.metrics == {"a.one": 1.0, "c.one": 3.0}
    after = summary(run)
    assert {k: after[k] for k in before} == before
    assert after["a.one"] == 1.0 and after["c.one"] == 3.0
    assert set(after[EVALUATED]) == {"a", "c"}
    assert not [p for p in run.iterdir() if p.name.startswith(".summary.json.") and p.suffix == ".tmp"]


def test_two_evaluators_returning_one_key_is_an_error_naming_both(host, run):
    BEHAVIOUR.update(a=returning({"shared": 1.0, "a.own": 1.0}), b=returning({"shared": 2.0, "b.own": 2.0}))
    with pytest.raises(EvaluationFailed, match=r"evaluators 'a' and 'b' both return the key 'shared'"):
        evaluate_run(run, host.registry, specs(host, "a", "b"))
    after = summary(run)
    assert after["shared"] == 1.0 and "b.own" not in after


def test_one_evaluator_listed_twice_collides_with_itself_by_position(host, tmp_path):
    BEHAVIOUR["a"] = returning({"a.one": 1.0})
    with pytest.raises(EvaluationFailed, match=r"evaluators 'a#0' and 'a#1' both return the key 'a.one'"):
        evaluate_model(tmp_path, context(tmp_path), host.registry, specs(host, "a", "a"), Origin("latest", 0))


def test_an_evaluator_may_not_overwrite_what_training_wrote(host, run):
    before = (run / "summary.json").read_bytes()
    BEHAVIOUR["a"] = returning({"status": 1.0})
    with pytest.raises(EvaluationFailed, match=r"'status', which summary.json already holds from training"):
        evaluate_run(run, host.registry, specs(host, "a"))
    assert (run / "summary.json").read_bytes() == before


@pytest.mark.parametrize(
    ("returned", "problem"),
    [
        ({"k": math.nan}, "returned nan for key 'k'; values must be finite"),
        ({"k": math.inf}, "returned inf for key 'k'; values must be finite"),
        ({"k": -math.inf}, "returned -inf for key 'k'; values must be finite"),
        ({"k": 1}, "returned int for key 'k'; values must be float (convert it with float(...))"),
        ({"k": torch.tensor(0.5)}, "returned Tensor for key 'k'; values must be float (convert"),
        ({"k": "0.5"}, "returned str for key 'k'; values must be float"),
        ({"k": None}, "returned NoneType for key 'k'"),
        ({"k": True}, "returned bool for key 'k'"),
        ({3: 1.0}, "returned the key 3; keys must be non-empty strings"),
        ({EVALUATED: 1.0}, "returned the key 'evaluated', which summary.json reserves"),
        ([1.0], "must return a dict of str -> float, got list"),
    ],
)
def test_bad_values_are_refused_naming_evaluator_and_key(host, run, returned, problem):
    before = (run / "summary.json").read_bytes()
    BEHAVIOUR["a"] = returning(returned)
    with pytest.raises(EvaluationFailed) as failed:
        evaluate_run(run, host.registry, specs(host, "a"))
    assert failed.value.failures["a"].startswith("evaluator 'a' ")
    assert problem in failed.value.failures["a"]
    assert (run / "summary.json").read_bytes() == before


def context(run_dir: Path, model: nn.Module | None = None) -> RunEvalContext:
    model = model if model is not None else nn.Linear(1, 1)
    return RunEvalContext(model, None, run_dir / "figures", torch.device("cpu"), 7)  # type: ignore[arg-type]


def test_evaluators_run_without_autograd_in_eval_mode_on_one_seeded_stream(host, tmp_path):
    seen = []

    def spy(run: Any) -> dict[str, float]:
        seen.append((torch.is_grad_enabled(), run.model.training, torch.randn(3), run.seed, run.figures_dir))
        return {f"spy.{len(seen)}": 0.0}

    BEHAVIOUR.update(spy=spy, a=spy)
    model = nn.Linear(1, 1).train()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    evaluate_model(tmp_path, context(tmp_path, model), host.registry, specs(host, "spy", "a"), Origin("latest", 0))
    assert torch.equal(torch.get_rng_state(), state), "evaluation must leave the global RNG as it was"
    assert model.training, "the model's own mode comes back after evaluation"
    (grad1, training1, draw1, seed1, figures1), (grad2, training2, draw2, _, _) = seen
    assert not grad1 and not grad2 and not training1 and not training2
    assert torch.equal(draw1, draw2), "every evaluator sees the same seeded stream, whatever ran before it"
    assert seed1 == 7 and figures1 == tmp_path / "figures" and figures1.is_dir()


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda k: k != EVALUATED),
        st.floats(allow_nan=False, allow_infinity=False),
        max_size=6,
    )
)
def test_finite_floats_pass_the_checks_unchanged(metrics):
    assert check_metrics("e", metrics) == metrics


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=8), st.floats(allow_nan=False, allow_infinity=False), max_size=4),
    st.text(min_size=1, max_size=8).filter(lambda k: k != EVALUATED),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_any_non_finite_value_is_refused_naming_its_key(metrics, key, bad):
    with pytest.raises(ValueError) as refused:
        check_metrics("e", {**metrics, key: bad})
    assert f"evaluator 'e' returned {bad} for key {key!r}; values must be finite" == str(refused.value)


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5))


@settings(max_examples=25, deadline=None)
@given(
    existing=st.dictionaries(st.text(min_size=1, max_size=6).map(lambda k: "old." + k), JSON_SCALARS, max_size=6),
    metrics=st.dictionaries(
        st.text(min_size=1, max_size=6).map(lambda k: "new." + k), st.floats(allow_nan=False, allow_infinity=False)
    ),
)
def test_merging_keeps_every_existing_key_and_adds_every_metric(host, existing, metrics):
    existing = {k: v for k, v in existing.items() if not (isinstance(v, float) and math.isinf(v))}
    BEHAVIOUR["a"] = returning(metrics)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        (run_dir / "summary.json").write_text(json.dumps(existing))
        evaluate_model(run_dir, context(run_dir), host.registry, specs(host, "a"), Origin("best", 5))
        merged = summary(run_dir)
    assert {k: merged[k] for k in existing} == existing
    assert {k: merged[k] for k in metrics} == metrics
    assert set(merged) == {*existing, *metrics, EVALUATED}
    assert merged[EVALUATED]["a"]["keys"] == sorted(metrics)


def test_a_broken_summary_is_refused_before_any_evaluator_runs(host, tmp_path):
    BEHAVIOUR["a"] = raising("must not run")
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(Exception, match=r"summary\.json is not valid JSON"):
        evaluate_model(tmp_path, context(tmp_path), host.registry, specs(host, "a"), Origin("latest", 0))
    assert (tmp_path / "summary.json").read_text() == "{not json"


# -- wynerkit eval -------------------------------------------------------------------------------------------


@pytest.fixture
def cli(host):
    app = build_app(host)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


def test_eval_without_evaluators_in_spec_or_on_the_command_line_is_a_usage_error(cli, run):
    result = cli("eval", run)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--evaluator NAME" in line and "evaluate:" in line and "spec.yaml" in line


def test_eval_with_an_unknown_evaluator_lists_the_registered_ones(cli, run):
    result = cli("eval", run, "--evaluator", "nope")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "unknown evaluator 'nope'" in line
    for name in ("probe", "reconstruction", "a", "b"):
        assert name in line.split("registered:")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--checkpoint", "best"], "not a run directory"),
        (["--evaluator", "a", "--evaluator", "a"], "--evaluator a: given more than once"),
    ],
)
def test_eval_usage_errors_are_one_line_with_exit_2(cli, tmp_path, args, message):
    result = cli("eval", tmp_path, *args)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert message in line


def test_eval_runs_named_evaluators_prints_a_table_and_merges(cli, run):
    BEHAVIOUR.update(a=returning({"a.metric": 0.25}))
    result = cli("eval", run, "--evaluator", "a", "--evaluator", "reconstruction", "--checkpoint", "best")
    assert result.exit_code == 0, result.output
    assert "a.metric" in result.stdout and "0.25" in result.stdout and "recon.x2y" in result.stdout
    after = summary(run)
    assert after["a.metric"] == 0.25 and set(RECON_KEYS) <= set(after)
    assert after[EVALUATED]["reconstruction"]["checkpoint"] == "best"
    assert (run / "figures" / "reconstruction.png").is_file()


def test_eval_reports_a_failing_evaluator_with_exit_1_and_keeps_the_others(cli, run):
    BEHAVIOUR.update(a=returning({"a.metric": 0.5}))
    result = cli("eval", run, "--evaluator", "probe", "--evaluator", "a")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = result.stderr.strip().splitlines()
    assert errors[0].startswith("wynerkit: error: evaluator 'probe' failed: ValueError: probe needs class labels")
    assert "'gaussian-pairs'" in errors[0]
    assert "a.metric" in result.stdout and summary(run)["a.metric"] == 0.5


# -- at the end of training ----------------------------------------------------------------------------------


def test_the_spec_evaluate_list_runs_at_the_end_of_training(host, tmp_path):
    run_dir = train(tmp_path, host, "evaluate=[{name: reconstruction, figure_items: 4}]")
    written = summary(run_dir)
    assert written["status"] == "finished" and set(RECON_KEYS) <= set(written)
    assert written[EVALUATED]["reconstruction"]["step"] == written["steps"] == 20
    assert written[EVALUATED]["reconstruction"]["params"]["figure_items"] == 4
    assert (run_dir / "figures" / "reconstruction.png").is_file()
    # the final EMA model is the latest checkpoint's: evaluating it later gives the very same numbers
    again = evaluate_run(run_dir, host.registry)
    assert again == {key: written[key] for key in RECON_KEYS}


def test_a_failing_evaluator_at_the_end_of_a_run_exits_1_but_keeps_the_run_and_the_other_metrics(cli, tmp_path):
    result = cli("run", TINY, "--out", tmp_path / "runs", "--set", "evaluate=[{name: probe}, {name: reconstruction}]")
    assert result.exit_code == 1
    assert "evaluator 'probe' failed" in result.stderr and "'gaussian-pairs'" in result.stderr
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    written = summary(run_dir)
    assert written["status"] == "finished" and set(RECON_KEYS) <= set(written)
    assert not [key for key in written if key.startswith("probe.")]
    # `wynerkit eval RUN_DIR` runs the spec's list again, with the same outcome
    result = cli("eval", run_dir)
    assert result.exit_code == 1 and "recon.x2y" in result.stdout
