"""``wynerkit sweep``: grid expansion, cell names, validation before training, resume, and the reports."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.errors import UsageError
from wynerkit.rundir.checkpoint import step_checkpoints
from wynerkit.sweeps.baselines import Baseline, read_baseline
from wynerkit.sweeps.grid import Axis, expand_grid, parse_axis
from wynerkit.sweeps.layout import CELLS, MANIFEST
from wynerkit.sweeps.manifest import Manifest
from wynerkit.sweeps.plan import plan_sweep
from wynerkit.sweeps.report import load_results, markdown_text, summary_metrics, write_reports
from wynerkit.sweeps.values import value_text

ROOT = Path(__file__).parent.parent
TINY = ROOT / "tests" / "specs" / "tiny.yaml"
QUICKSTART = ROOT / "specs" / "quickstart.yaml"
FAST = ["--set", "train.max_steps=10", "--set", "train.checkpoint.every=5"]
SAFE_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._+=~-]*")


@pytest.fixture
def cli(builtin_host):
    app = build_app(builtin_host)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def overlay(tmp_path: Path, name: str, entries: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(entries))
    return path


def read_csv(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "sweep.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def summary(cell_dir: Path) -> dict:
    return json.loads((cell_dir / "summary.json").read_text())


# -- grid expansion and names -----------------------------------------------------------------------

keys = st.from_regex(r"[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){0,2}", fullmatch=True)
scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=50),
)
values = st.one_of(scalars, st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 9), max_size=2))
axes_strategy = st.lists(
    st.tuples(keys, st.lists(values, min_size=1, max_size=3, unique_by=value_text)),
    max_size=3,
    unique_by=lambda axis: axis[0],
)
labels = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), max_size=2, unique=True)


@settings(max_examples=60, deadline=None)
@given(axes_strategy, labels)
def test_grid_expansion_counts_unique_stable_filesystem_safe_names(raw_axes, baseline_labels):
    axes = [Axis(key, tuple(vals)) for key, vals in raw_axes]
    baselines = [Baseline(label, Path(f"{label}.yaml"), {"model.name": "iiae"}) for label in baseline_labels]
    cells = expand_grid(axes, baselines)
    seeds = next((len(a.values) for a in axes if a.key == "seed"), 1)
    assert len(cells) == math.prod(len(a.values) for a in axes) + len(baselines) * seeds
    grid_cells = [c for c in cells if c.baseline is None]
    assert len({value_text(c.assignments) for c in grid_cells}) == len(grid_cells)  # every combination once
    assert all(list(c.assignments) == [a.key for a in axes] for c in grid_cells)
    names = [c.name for c in cells]
    assert len(set(names)) == len(names)
    assert names == [c.name for c in expand_grid(axes, baselines)]  # stable
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            assert SAFE_NAME.fullmatch(name) and len(name) <= 255, name
            (Path(tmp) / name).mkdir()
        assert sorted(os.listdir(tmp)) == sorted(names)


@settings(max_examples=200, deadline=None)
@given(values)
def test_value_text_is_read_back_as_the_same_value(value):
    """Cells apply their assignments as KEY=value_text(value), read with yaml.safe_load like --set."""
    assert "\n" not in value_text(value)
    assert yaml.safe_load(value_text(value)) == value


def test_cell_names_read_like_their_assignments():
    axes = [Axis("objective.lambda_ci", (0, 0.5)), Axis("model.name", ("iiae",)), Axis("seed", (0,))]
    cells = expand_grid(axes, [Baseline("degenerate-local", Path("d.yaml"), {})])
    assert [c.name for c in cells] == [
        "objective.lambda_ci=0__model.name=iiae__seed=0",
        "objective.lambda_ci=0.5__model.name=iiae__seed=0",
        "baseline=degenerate-local__seed=0",
    ]
    assert cells[1].label == "objective.lambda_ci=0.5 model.name=iiae seed=0"
    odd = expand_grid([Axis("objective.terms", ({"IIAE": 1}, "a/b"))])
    assert [c.name.split("~")[0] for c in odd] == ["objective.terms=IIAE_1", "objective.terms=a_b"]
    assert expand_grid([])[0].name == "base"


def test_grid_values_are_one_yaml_flow_list():
    assert parse_axis("objective.lambda_ci=0,0.1, 0.5,1").values == (0, 0.1, 0.5, 1)
    assert parse_axis("model.name=variational-wyner,wyner-degenerate-local").values == (
        "variational-wyner",
        "wyner-degenerate-local",
    )
    assert parse_axis("objective.terms={IIAE: 1},{D_joint: 1, R_x2y: 2}").values == (
        {"IIAE": 1},
        {"D_joint": 1, "R_x2y": 2},
    )
    assert parse_axis("estimator=null").values == (None,)


def test_the_default_sweep_directory_changes_with_grid_baselines_and_sets(builtin_host, tmp_path):
    def plan(*axes: Axis, sets: tuple[str, ...] = (), baselines: tuple[Baseline, ...] = ()):
        return plan_sweep(TINY, builtin_host.registry, list(axes), list(baselines), list(sets))

    base = plan(Axis("seed", (0, 1)))
    assert base.default_dir().parent == Path("sweeps") and base.default_dir().name.startswith("tiny-")
    assert base.default_dir() == plan(Axis("seed", (0, 1))).default_dir()
    others = [
        plan(Axis("seed", (0, 2))),
        plan(Axis("seed", (0, 1)), sets=("train.max_steps=3",)),
        plan(Axis("seed", (0, 1)), baselines=(Baseline("x", tmp_path / "x.yaml", {"objective.lambda_ci": 0}),)),
    ]
    assert len({base.default_dir(), *(p.default_dir() for p in others)}) == 4


# -- usage errors, all before training --------------------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("objective.lambda_ci", "--grid objective.lambda_ci: expected KEY=V1,V2,..."),
        ("seed=", "--grid seed=: no values after '='"),
        ("=1,2", "--grid =1,2: expected KEY=V1,V2,..."),
        ("a..b=1", "--grid a..b=1: 'a..b' is not a dotted spec path"),
        ("seed=[0,1", "--grid seed=[0,1: the values are not a comma-separated YAML list"),
        ("seed=0,1,0", "--grid seed=0,1,0: value 0 is listed more than once"),
        ("seed=2001-01-01", "--grid seed=2001-01-01: value: 2001-01-01 cannot be recorded in sweep.json"),
    ],
)
def test_a_bad_grid_is_a_usage_error_naming_it(cli, tmp_path, grid, message):
    result = cli("sweep", TINY, "--grid", grid, "--out", tmp_path / "sweep")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "sweep").exists()


def test_every_parsing_problem_is_reported_at_once(cli, tmp_path):
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- model.name\n")
    result = cli(
        "sweep", TINY, "--grid", "seed=0", "--grid", "seed=1", "--grid", "bad",
        "--baseline", tmp_path / "missing.yaml", "--baseline", not_a_mapping, "--metrics", ",",
    )  # fmt: skip
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "--grid bad: expected KEY=V1,V2,..., e.g. --grid objective.lambda_ci=0,0.5,1",
        "--grid seed: given more than once; list all its values in one --grid",
        f"--baseline {tmp_path / 'missing.yaml'}: no such file",
        f"--baseline {not_a_mapping}: an overlay is a mapping of dotted spec keys to values, e.g. `model.name: iiae` "
        "(each entry replaces the node at its key, as --set does)",
        "--metrics ,: no metric names; e.g. --metrics valid.loss,coherence.x2y",
    ]


def test_invalid_cells_are_all_reported_before_any_training(cli, tmp_path):
    bad = overlay(tmp_path, "broken", {"model.name": "nope"})
    out = tmp_path / "sweep"
    result = cli(
        "sweep", TINY, "--grid", "objective.lambda_ci=-1,0,x", "--grid", "seed=0,1", "--baseline", bad, "--out", out
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        "cells objective.lambda_ci=-1 seed=0; objective.lambda_ci=-1 seed=1: --grid objective.lambda_ci=-1: "
        "objective.lambda_ci: Input should be greater than or equal to 0 (got -1)"
    )
    assert lines[1].startswith(
        "cells objective.lambda_ci=x seed=0; objective.lambda_ci=x seed=1: --grid objective.lambda_ci=x: "
        "objective.lambda_ci: Input should be a valid number"
    )
    assert lines[2].startswith(
        f"cells baseline=broken seed=0; baseline=broken seed=1: --baseline {bad} model.name=nope: model: unknown "
        "model 'nope'; registered: "
    )
    assert len(lines) == 3
    assert not out.exists()


def test_a_problem_of_the_spec_itself_is_reported_once_for_all_cells(cli, tmp_path):
    result = cli("sweep", TINY, "--grid", "seed=0,1", "--set", "train.batch_sizee=4", "--out", tmp_path / "s")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("all 2 cells: --set train.batch_sizee=4: train.batch_sizee: unknown field")


# -- real sweeps ------------------------------------------------------------------------------------


def test_a_tiny_sweep_with_a_baseline_trains_every_cell_writes_reports_and_skips_them_when_rerun(cli, tmp_path):
    half = overlay(tmp_path, "half-ci", {"objective.lambda_ci": 0.5})
    out = tmp_path / "sweep"
    args = ["sweep", TINY, "--grid", "objective.lambda_ci=0,1", "--grid", "seed=0,1", "--baseline", half, *FAST]
    result = cli(*args, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert "cell 5/6 baseline=half-ci seed=0: training in" in result.stderr

    rows = read_csv(out)
    assert [(r["objective.lambda_ci"], r["seed"], r["baseline"]) for r in rows] == [
        ("0", "0", ""), ("0", "1", ""), ("1", "0", ""), ("1", "1", ""), ("", "0", "half-ci"), ("", "1", "half-ci"),
    ]  # fmt: skip
    assert {r["status"] for r in rows} == {"finished"} and {r["model"] for r in rows} == {"variational-wyner"}
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["spec"] == str(TINY)
    assert manifest["grid"] == [{"key": "objective.lambda_ci", "values": [0, 1]}, {"key": "seed", "values": [0, 1]}]
    assert manifest["baselines"][0]["label"] == "half-ci"
    for row, cell in zip(rows, manifest["cells"], strict=True):
        assert cell["status"] == "finished" and cell["name"] == row["cell"]
        cell_dir = out / cell["dir"]
        written = summary(cell_dir)
        assert float(row["valid.loss"]) == written["valid.loss"] and math.isfinite(written["valid.loss"])
        assert float(row["final.loss.generator"]) == written["final"]["loss.generator"]
        spec = yaml.safe_load((cell_dir / "spec.yaml").read_text())
        assert spec["seed"] == int(row["seed"]) and spec["train"]["max_steps"] == 10
        expected_ci = 0.5 if row["baseline"] else float(row["objective.lambda_ci"])
        assert spec["objective"]["lambda_ci"] == expected_ci
    assert "| 0 |  | variational-wyner | 2/2 | " in (out / "sweep.md").read_text()
    with Image.open(out / "sweep.png") as picture:
        assert picture.format == "PNG" and picture.width <= 1000
    assert (out / "sweep.png").stat().st_size < 100_000

    mtimes = {p: p.stat().st_mtime_ns for p in out.glob(f"{CELLS}/*/summary.json")}
    again = cli(*args, "--out", out)
    assert again.exit_code == 0, again.output
    assert again.stderr.count("finished earlier, skipped") == 6 and "training in" not in again.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob(f"{CELLS}/*/summary.json")} == mtimes


def test_a_diverged_cell_is_recorded_and_the_sweep_goes_on_with_exit_code_1(cli, tmp_path):
    out = tmp_path / "sweep"
    result = cli("sweep", TINY, "--grid", "train.lr=1.0e+30,1.0e-3", *FAST, "--out", out)
    assert result.exit_code == 1, result.output
    assert "cell 1/2 train.lr=1.0e+30: diverged: step 1:" in result.stderr
    assert "cell 2/2 train.lr=0.001: finished" in result.stderr
    assert [r["status"] for r in read_csv(out)] == ["diverged", "finished"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert "generator loss" in manifest["cells"][0]["error"]
    again = cli("sweep", TINY, "--grid", "train.lr=1.0e+30,1.0e-3", *FAST, "--out", out)
    assert again.exit_code == 1 and "diverged earlier, skipped" in again.stderr
    assert json.loads((out / MANIFEST).read_text())["cells"][0]["error"] == manifest["cells"][0]["error"]


def test_a_cell_trained_with_another_spec_is_refused_before_training(cli, tmp_path):
    out = tmp_path / "sweep"
    assert cli("sweep", TINY, "--grid", "seed=0", *FAST, "--out", out).exit_code == 0
    result = cli("sweep", TINY, "--grid", "seed=0,1", "--set", "train.max_steps=12", "--out", out)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("cell seed=0: ") and "differs in train.checkpoint.every, train.max_steps" in line
    assert not (out / CELLS / "seed=1").exists()


def test_a_cell_recorded_before_a_field_existed_still_counts_as_the_same_spec(cli, tmp_path):
    out = tmp_path / "sweep"
    assert cli("sweep", TINY, "--grid", "seed=0", *FAST, "--out", out).exit_code == 0
    recorded = out / CELLS / "seed=0" / "spec.resolved.json"
    older = json.loads(recorded.read_text())
    del older["train"]["precision"]  # as written before train.precision was added (its default: fp32)
    recorded.write_text(json.dumps(older))
    again = cli("sweep", TINY, "--grid", "seed=0", *FAST, "--out", out)
    assert again.exit_code == 0 and "finished earlier, skipped" in again.stderr
    older["train"]["precision"] = "bf16"  # a recorded value that differs is still a different spec
    recorded.write_text(json.dumps(older))
    changed = cli("sweep", TINY, "--grid", "seed=0", *FAST, "--out", out)
    assert changed.exit_code == 2 and "differs in train.precision" in changed.stderr


@pytest.mark.slow  # a killed and a resumed sweep in subprocesses; CI runs the slow tests too
def test_a_sweep_killed_mid_cell_resumes_that_cell_from_its_checkpoint(cli, tmp_path):
    out = tmp_path / "sweep"
    settings_ = ["--set", "train.max_steps=120", "--set", "train.checkpoint.every=10", "--set", "train.log_every=10"]
    args = ["sweep", str(TINY), "--grid", "seed=0,1", *settings_, "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "wynerkit", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    second = out / CELLS / "seed=1"
    try:
        deadline = time.monotonic() + 120
        while not step_checkpoints(second / "checkpoints"):
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (second / "summary.json").exists(), "the cell finished before the kill; make it longer"
    manifest = json.loads((out / MANIFEST).read_text())
    assert [c["status"] for c in manifest["cells"]] == ["finished", "running"]

    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "cell 1/2 seed=0: finished earlier, skipped" in result.stderr
    assert "cell 2/2 seed=1: resuming in" in result.stderr
    resumed = summary(second)
    assert resumed["status"] == "finished" and resumed["steps"] == 120
    assert resumed["resumed_from_step"] > 0 and resumed["resumed_from_step"] % 10 == 0
    assert [r["status"] for r in read_csv(out)] == ["finished", "finished"]


@pytest.mark.slow  # trains every cell of the quickstart sweep; CI runs the slow tests too
def test_the_quickstart_sweeps_with_a_tiny_budget(cli, tmp_path):
    """The issue's CI check: `wynerkit sweep` on the quickstart spec (MNIST x SynDigits, cpu preset)."""
    out = tmp_path / "quickstart"
    budget = ["--set", "train.max_steps=4", "--set", "train.batch_size=16", "--set", "train.checkpoint.every=2"]
    result = cli("sweep", QUICKSTART, *budget, "--grid", "objective.lambda_ci=0,1", "--out", out)
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    assert [r["objective.lambda_ci"] for r in rows] == ["0", "1"]
    assert all(r["status"] == "finished" and math.isfinite(float(r["valid.loss"])) for r in rows)
    assert (out / "sweep.png").is_file()


def test_the_iiae_overlay_unsets_the_fields_only_variational_wyner_has(builtin_host):
    """The quickstart sets code_scale and local_noise; IIAE has neither, so its overlay removes them first."""
    iiae = read_baseline(ROOT / "specs" / "overlays" / "iiae.yaml")
    assert "model.local_noise" in iiae.unset and "unset" not in iiae.entries
    plan = plan_sweep(QUICKSTART, builtin_host.registry, [Axis("seed", (0,))], [iiae], [])
    model = next(c.spec.model for c in plan.cells if c.cell.baseline is not None)
    assert model.name == "iiae" and model.y.batch_norm  # the modalities are kept as they were
    tiny = plan_sweep(TINY, builtin_host.registry, [Axis("seed", (0,))], [iiae], [])  # absent keys: no-op
    assert {c.spec.model.name for c in tiny.cells} == {"variational-wyner", "iiae"}


def test_an_unset_that_is_not_a_list_of_keys_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("unset: model.local_noise\nmodel.name: iiae\n")
    with pytest.raises(UsageError, match="unset is a list of dotted spec keys"):
        read_baseline(bad)


# -- reports from fake summaries --------------------------------------------------------------------


@pytest.fixture
def fake_sweep(builtin_host, tmp_path) -> Path:
    """A sweep directory as the sweep writes it, with hand-made summaries instead of training."""
    baseline = Baseline("half-ci", tmp_path / "half-ci.yaml", {"objective.lambda_ci": 0.5})
    axes = [Axis("objective.lambda_ci", (0, 1)), Axis("seed", (0, 1, 2))]
    plan = plan_sweep(TINY, builtin_host.registry, axes, [baseline], [])
    out = tmp_path / "sweep"
    manifest = Manifest(out, plan)
    made = {
        "objective.lambda_ci=0__seed=0": {"valid.loss": 1.0, "coherence.x2y": 0.25},
        "objective.lambda_ci=0__seed=1": {"valid.loss": 2.0},
        "objective.lambda_ci=0__seed=2": {"valid.loss": 4.0},
        "objective.lambda_ci=1__seed=0": {"valid.loss": 0.5},
        "objective.lambda_ci=1__seed=1": {"valid.loss": 0.7},
        "objective.lambda_ci=1__seed=2": None,  # diverged
        "baseline=half-ci__seed=0": {"valid.loss": 3.0},
    }
    for name, metrics in made.items():
        status = "finished" if metrics is not None else "diverged"
        content = {
            "status": status,
            "seed": 0,
            "steps": 10,
            "final": {"step": 10, "loss.generator": 1.5},
            "evaluated": {"coherence": {"step": 10}},
            "data": {"n_train": 1000},
            **(metrics or {}),
        }
        (out / CELLS / name).mkdir(parents=True)
        (out / CELLS / name / "summary.json").write_text(json.dumps(content))
        manifest.set(name, status)
    return out


def test_sweep_md_gives_mean_and_sample_std_over_seeds(fake_sweep):
    text = markdown_text(load_results(fake_sweep), ["valid.loss", "coherence.x2y"])
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table == [
        "| objective.lambda_ci | baseline | model | finished | valid.loss | coherence.x2y |",
        "| --- | --- | --- | --- | --- | --- |",
        # (1 + 2 + 4) / 3 = 2.333; sqrt(((1 - 7/3)^2 + (2 - 7/3)^2 + (4 - 7/3)^2) / 2) = 1.528
        "| 0 |  | variational-wyner | 3/3 | 2.333 ± 1.5 | 0.25 |",
        # the diverged seed is left out: (0.5 + 0.7) / 2 = 0.6; sqrt(2 * 0.1^2 / 1) = 0.1414
        "| 1 |  | variational-wyner | 2/3 | 0.6 ± 0.14 | — |",
        "|  | half-ci | variational-wyner | 1/3 | 3 | — |",
    ]
    assert "mean ± sample standard deviation over the finished seeds (of 3)" in text


def test_sweep_csv_flattens_numbers_and_leaves_out_provenance(fake_sweep):
    assert summary_metrics({"a": 1, "b": {"c": 2.5, "d": "x", "e": True}, "f": float("nan"), "seed": 3}) == {
        "a": 1.0,
        "b.c": 2.5,
    }
    write_reports(fake_sweep, None, log=lambda line: None)
    rows = read_csv(fake_sweep)
    assert list(rows[0]) == [
        "cell", "objective.lambda_ci", "baseline", "model", "seed", "status", "coherence.x2y", "valid.loss",
        "final.loss.generator", "final.step", "steps",
    ]  # fmt: skip
    assert "final.loss.generator" in rows[0] and not any(k.startswith(("evaluated", "data.")) for k in rows[0])
    assert [r["valid.loss"] for r in rows] == ["1.0", "2.0", "4.0", "0.5", "0.7", "", "3.0", "", ""]
    assert [r["seed"] for r in rows] == ["0", "1", "2", "0", "1", "2", "0", "1", "2"]
    assert [r["status"] for r in rows][5:] == ["diverged", "finished", "pending", "pending"]


def test_sweep_png_draws_each_metric_and_warns_about_unknown_ones(fake_sweep):
    logged: list[str] = []
    written = write_reports(fake_sweep, ["valid.loss", "fd.joint"], log=logged.append)
    assert [p.name for p in written] == ["sweep.csv", "sweep.md", "sweep.png"]
    assert logged == [
        "wynerkit: warning: --metrics fd.joint: no cell's summary.json has it (found: coherence.x2y, valid.loss)"
    ]
    with Image.open(fake_sweep / "sweep.png") as picture:
        assert picture.format == "PNG" and picture.width < picture.height * 4


def test_without_matplotlib_the_plot_is_skipped_with_a_clear_message(fake_sweep, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    logged: list[str] = []
    written = write_reports(fake_sweep, None, log=logged.append)
    assert [p.name for p in written] == ["sweep.csv", "sweep.md"]
    assert not (fake_sweep / "sweep.png").exists()
    assert len(logged) == 1 and "sweep.png needs matplotlib (pip install matplotlib)" in logged[0]


def test_parse_axis_refuses_what_sweep_json_cannot_hold():
    with pytest.raises(UsageError, match=r"cannot be recorded in sweep\.json"):
        parse_axis("objective.lambda_ci=.nan")
