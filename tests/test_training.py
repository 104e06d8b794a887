"""The trainer: reproducibility, kill-and-resume, NaN handling, checkpoints and their errors."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from wynerkit import CriticLoss, NoParams, hookimpl
from wynerkit.cli.app import build_app
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit.rundir.checkpoint import read_checkpoint, step_checkpoints
from wynerkit.runs.create import create_run_dir
from wynerkit.runs.training_run import train_run
from wynerkit.spec.loading import load_spec
from wynerkit.training.assembly import assemble
from wynerkit.training.divergence import TrainingDiverged
from wynerkit.training.speedups import has_native_bf16
from wynerkit.training.trainer import Trainer

TINY = Path(__file__).parent / "specs" / "tiny.yaml"


def start(tmp_path: Path, host: PluginHost, *overrides: str, spec_path: Path = TINY) -> tuple[Path, object]:
    loaded = load_spec(spec_path, host.registry, list(overrides))
    return create_run_dir(tmp_path / "runs", loaded.spec, loaded.source, host), loaded.spec


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_run_leaves_checkpoints_metrics_figures_and_a_summary(tmp_path, builtin_host):
    run_dir, spec = start(tmp_path, builtin_host)
    summary = train_run(run_dir, spec, builtin_host.registry)
    assert summary["status"] == "finished" and summary["steps"] == 20
    records = metrics(run_dir)
    logged = [r for r in records if "loss.generator" in r]
    assert [r["step"] for r in logged] == [5, 10, 15, 20]
    for term in ("D_joint", "I_x2y", "R_y2x"):
        assert all(f"term.{term}" in r for r in logged)
    assert all(0.0 <= r["accuracy.D_joint"] <= 1.0 for r in logged)
    assert [r["step"] for r in records if "valid.loss" in r] == [10, 20]
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["best", "step-00000010", "step-00000020"]
    assert sorted(summary["figures"]) == ["figures/conditional.png", "figures/joint.png", "figures/style.png"]
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["final"]["step"] == 20 and written["best"]["step"] in (10, 20)
    native = has_native_bf16(torch.device("cpu"))  # the tiny spec leaves precision and switches on auto
    expected = {"precision": "fp32", "channels_last": False, "compile": False}  # auto: fp32 on every CPU
    assert written["execution"] == expected | {"native_bf16": native}
    heads = ("D_joint", "D_x2y", "D_y2x", "I_joint", "I_x2y", "I_y2x")
    assert all(math.isfinite(r[f"pairing.{head}"]) for r in logged for head in heads)


def test_same_spec_and_seed_give_identical_metrics_and_another_seed_does_not(tmp_path, builtin_host):
    runs = []
    for seed in (0, 0, 1):
        run_dir, spec = start(tmp_path, builtin_host, f"seed={seed}")
        train_run(run_dir, spec, builtin_host.registry)
        runs.append(metrics(run_dir))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_how_often_a_run_logs_does_not_change_what_it_trains(tmp_path, builtin_host):
    """Per-window diagnostics (``pairing.*``) are measured only on logged steps, without drawing random
    numbers: logging every step and every 4th step train the same weights, and each line has a pairing."""
    finals = []
    for every in (1, 4):
        run_dir, spec = start(tmp_path / str(every), builtin_host, f"train.log_every={every}")
        train_run(run_dir, spec, builtin_host.registry)
        logged = [r for r in metrics(run_dir) if "loss.generator" in r]
        assert len(logged) == 20 // every and all("pairing.D_joint" in r for r in logged)
        finals.append(load_file(str(step_checkpoints(run_dir / "checkpoints")[-1] / "model.safetensors")))
    assert finals[0].keys() == finals[1].keys()
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])


def test_keep_last_prunes_old_checkpoints_but_keeps_the_best(tmp_path, builtin_host):
    run_dir, spec = start(tmp_path, builtin_host, "train.checkpoint.every=4", "train.checkpoint.keep_last=1")
    train_run(run_dir, spec, builtin_host.registry)
    assert [p.name for p in step_checkpoints(run_dir / "checkpoints")] == ["step-00000020"]
    assert (run_dir / "checkpoints" / "best" / "state.json").is_file()
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]


def wait_for_checkpoint(run_root: Path, proc: subprocess.Popen, timeout: float = 120.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for d in run_root.glob("*/*") for c in step_checkpoints(d / "checkpoints")]
        if found:
            return found[0].parent.parent
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow  # three training subprocesses, one killed; CI runs the slow tests too
def test_a_run_killed_with_sigkill_and_resumed_ends_like_an_uninterrupted_run(tmp_path, builtin_host):
    settings = ["train.max_steps=150", "train.checkpoint.every=13", "train.log_every=5"]
    reference_dir, spec = start(tmp_path / "reference", builtin_host, *settings)
    train_run(reference_dir, spec, builtin_host.registry)

    command = [sys.executable, "-m", "wynerkit", "run", str(TINY), "--out", str(tmp_path / "killed")]
    for setting in settings:
        command += ["--set", setting]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        run_dir = wait_for_checkpoint(tmp_path / "killed", proc)
        time.sleep(0.3)  # let it run on past the checkpoint, mid-epoch, before the kill
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "summary.json").exists(), "the run finished before the kill; make it longer"

    result = CliRunner().invoke(build_app(builtin_host), ["run", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert 0 < summary["resumed_from_step"] < 150 and summary["resumed_from_step"] % 13 == 0
    assert_same_metrics(metrics(run_dir), metrics(reference_dir))


def assert_same_metrics(resumed: list[dict], reference: list[dict]) -> None:
    """The same records at the same steps, every value within 1e-5."""
    assert [r["step"] for r in resumed] == [r["step"] for r in reference]
    for mine, theirs in zip(resumed, reference, strict=True):
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            assert mine[key] == pytest.approx(value, abs=1e-5, rel=0), (mine["step"], key)


class ExplodingTerm:
    """A term whose generator loss turns NaN at a chosen call: a model diverging mid-run."""

    critic_heads: dict = {}  # noqa: RUF012
    multiplier = None

    def __init__(self, at_call: int) -> None:
        self.at_call, self.calls = at_call, 0

    def generator_loss(self, step):
        self.calls += 1
        value = step.sample("variational").z.square().mean()
        return value * float("nan") if self.calls >= self.at_call else value

    def critic_loss(self, step) -> CriticLoss | None:
        return None


def host_with_exploding_term(at_call: int) -> PluginHost:
    class Plugin:
        @hookimpl
        def wynerkit_register_objective_terms(self, register):
            register("Explode", lambda params, context: ExplodingTerm(at_call), params=NoParams)

    sources = [*discover(builtin_only=True), PluginSource.from_object("exploding", Plugin())]
    return PluginHost.load(sources, blocked=())


def test_a_nan_loss_stops_the_run_naming_term_and_step_and_keeps_the_last_checkpoint(tmp_path):
    host = host_with_exploding_term(at_call=14)
    run_dir, spec = start(tmp_path, host, "objective.terms.Explode=1.0")
    with pytest.raises(TrainingDiverged, match=r"step 14: generator loss of term Explode is nan"):
        train_run(run_dir, spec, host.registry)
    checkpoints = step_checkpoints(run_dir / "checkpoints")
    assert [p.name for p in checkpoints] == ["step-00000010"]
    parts_state = json.loads((checkpoints[0] / "state.json").read_text())
    assert parts_state["position"]["step"] == 10
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged" and "Explode" in summary["error"]
    # the kept checkpoint still loads, with finite weights
    from wynerkit.training.assembly import assemble

    parts = assemble(spec, host.registry)
    read_checkpoint(checkpoints[0], {"model": parts.model}, {})
    assert all(torch.isfinite(p).all() for p in parts.model.parameters())


def test_the_cli_reports_divergence_with_exit_code_1(tmp_path):
    host = host_with_exploding_term(at_call=3)
    result = CliRunner().invoke(
        build_app(host), ["run", str(TINY), "--out", str(tmp_path), "--set", "objective.terms.Explode=1"]
    )
    assert result.exit_code == 1
    assert "step 3: generator loss of term Explode is nan" in result.stderr


def test_resuming_into_a_different_architecture_names_the_mismatched_tensors(tmp_path, builtin_host):
    run_dir, spec = start(tmp_path, builtin_host, "train.max_steps=10")
    train_run(run_dir, spec, builtin_host.registry)
    spec_file = run_dir / "spec.yaml"
    edited = yaml.safe_load(spec_file.read_text())
    edited["model"]["x"]["hidden"] = 24
    spec_file.write_text(yaml.safe_dump(edited))
    result = CliRunner().invoke(build_app(builtin_host), ["run", "--resume", str(run_dir)])
    assert result.exit_code == 2
    assert "model weights do not match this spec's architecture" in result.stderr
    assert "joint_encoder.x_trunk.0.weight: checkpoint [16, 8] vs model [24, 8]" in result.stderr
    assert (run_dir / "checkpoints" / "step-00000010" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "pass a spec FILE"),
        (["run", str(TINY), "--resume", "."], "do not also pass FILE"),
        (["run", "--resume", "."], "not a run directory"),
    ],
)
def test_run_usage_errors(args, message, builtin_host):
    result = CliRunner().invoke(build_app(builtin_host), args)
    assert result.exit_code == 2 and message in result.stderr


def test_sample_draws_each_panel_of_a_trained_run_reproducibly(tmp_path, builtin_host):
    run_dir, spec = start(tmp_path, builtin_host, "train.max_steps=10")
    train_run(run_dir, spec, builtin_host.registry)
    app = build_app(builtin_host)
    sizes = {}
    for kind in ("joint", "x2y", "y2x", "style"):
        out = tmp_path / f"{kind}.png"
        result = CliRunner().invoke(app, ["sample", str(run_dir), "--kind", kind, "--out", str(out), "--rows", "3"])
        assert result.exit_code == 0, result.output
        with Image.open(out) as image:
            sizes[kind] = image.size
    assert sizes["x2y"] == sizes["y2x"] and sizes["style"][1] > sizes["x2y"][1]
    again = tmp_path / "again.png"
    CliRunner().invoke(app, ["sample", str(run_dir), "--kind", "joint", "--out", str(again), "--rows", "3"])
    assert again.read_bytes() == (tmp_path / "joint.png").read_bytes()
    other = tmp_path / "other.png"
    args = ["sample", str(run_dir), "--kind", "joint", "--out", str(other), "--rows", "3", "--seed", "1"]
    CliRunner().invoke(app, args)
    assert other.read_bytes() != again.read_bytes()


def test_sample_without_a_checkpoint_is_a_usage_error(tmp_path, builtin_host):
    run_dir, _ = start(tmp_path, builtin_host)
    result = CliRunner().invoke(
        build_app(builtin_host), ["sample", str(run_dir), "--kind", "joint", "--out", str(tmp_path / "a.png")]
    )
    assert result.exit_code == 2 and "no checkpoint yet" in result.stderr
    assert not (tmp_path / "a.png").exists()


def test_bf16_autocast_changes_the_arithmetic_slightly_and_keeps_float32_weights(tmp_path, builtin_host):
    results = {}
    for precision in ("fp32", "bf16"):
        run_dir, spec = start(tmp_path / precision, builtin_host, f"train.precision={precision}", "train.max_steps=10")
        train_run(run_dir, spec, builtin_host.registry)
        first = next(r for r in metrics(run_dir) if "loss.generator" in r)
        results[precision] = (first["loss.generator"], first["loss.critic"])
        weights = load_file(run_dir / "checkpoints" / "step-00000010" / "model.safetensors")
        assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float32}
    for fp32, bf16 in zip(results["fp32"], results["bf16"], strict=True):
        assert fp32 != bf16, "bf16 autocast was not in effect"
        assert abs(fp32 - bf16) < 0.05 * abs(fp32) + 0.05  # bfloat16 keeps about 3 significant digits


def test_the_trainer_tells_the_training_split_every_epoch(tmp_path, builtin_host):
    run_dir, spec = start(tmp_path, builtin_host, "train.max_steps=70")  # 31 steps per epoch: epochs 0, 1, 2
    parts = assemble(spec, builtin_host.registry)
    seen: list[int] = []
    parts.data.split("train").set_epoch = seen.append  # the split object the trainer will read
    Trainer(parts, run_dir).fit()
    assert seen == [0, 1, 2]
