"""Verified checkpoints: digests on write, damaged files named and refused, resume falls back to an intact step.

Also what resume says on stderr, the leftovers it clears, and the run directories failed starts remove.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from test_training import TINY, assert_same_metrics, metrics, start
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.rundir.checkpoint import BEST, DIGESTS, STATE, Checkpoint, CheckpointDamaged, remove_temporaries
from wynerkit.runs.training_run import train_run
from wynerkit.spec.loading import load_spec
from wynerkit.training.assembly import assemble
from wynerkit.training.trainer import Trainer

CHECKPOINTS = "checkpoints"  # the run-directory layout users rely on
STEP_10, STEP_20 = "step-00000010", "step-00000020"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, builtin_host) -> Path:
    """A finished tiny run (checkpoints at steps 10 and 20); tests damage copies of it."""
    run_dir, spec = start(tmp_path_factory.mktemp("trained"), builtin_host)
    train_run(run_dir, spec, builtin_host.registry)
    return run_dir


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def checkpoint(run_dir: Path, name: str) -> Path:
    return run_dir / CHECKPOINTS / name


def flip_tensor_bytes(file: Path, count: int = 16) -> None:
    """Invert ``count`` bytes inside the tensor data (past the safetensors header), as bit rot would."""
    data = bytearray(file.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little") + 16
    data[start : start + count] = bytes(b ^ 0xFF for b in data[start : start + count])
    file.write_bytes(bytes(data))


def truncate_to_half(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def replace_by_pickle(file: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(3)}, buffer)
    file.write_bytes(buffer.getvalue())


DAMAGE = {
    "flipped bytes": ("model.safetensors", flip_tensor_bytes),
    "truncated weights": ("model.safetensors", truncate_to_half),
    "pickle weights": ("ema.safetensors", replace_by_pickle),
    "truncated state.json": (STATE, truncate_to_half),
    "missing file": ("extra.safetensors", Path.unlink),
}


def read_every_file(path: Path) -> None:
    opened = Checkpoint.open(path)
    for name in ("model.safetensors", "ema.safetensors", "extra.safetensors"):
        opened.tensors(name)


def resume_in_process(run_dir: Path, host) -> int:
    trainer = Trainer(assemble(load_spec(run_dir / "spec.yaml", host.registry).spec, host.registry), run_dir)
    return trainer.resume()


# -- digests ----------------------------------------------------------------------------------------------


def test_a_checkpoint_records_the_sha256_of_every_file_it_wrote(trained):
    for name in (STEP_10, STEP_20, BEST):
        path = checkpoint(trained, name)
        digests = json.loads((path / STATE).read_text())[DIGESTS]
        assert sorted(digests) == sorted(p.name for p in path.iterdir() if p.name != STATE)
        opened = Checkpoint.open(path)
        assert all(opened.tensors(file) for file in digests)  # each file matches its digest


@pytest.mark.parametrize("damage", DAMAGE)
def test_each_kind_of_damage_is_refused_naming_the_file(run, damage):
    file, spoil = DAMAGE[damage]
    spoil(checkpoint(run, STEP_20) / file)
    with pytest.raises(CheckpointDamaged) as info:
        read_every_file(checkpoint(run, STEP_20))
    assert info.value.file == checkpoint(run, STEP_20) / file
    assert str(info.value).startswith(f"{checkpoint(run, STEP_20) / file}: ")
    assert "\n" not in str(info.value)


# -- resume -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", DAMAGE)
def test_resume_skips_a_damaged_newest_checkpoint_for_the_intact_one_before_and_says_so(
    run, damage, builtin_host, capsys
):
    file, spoil = DAMAGE[damage]
    spoil(checkpoint(run, STEP_20) / file)
    assert resume_in_process(run, builtin_host) == 10
    said = capsys.readouterr().err
    assert f"skipping {checkpoint(run, STEP_20)}: {file} " in said
    assert f"resuming from {checkpoint(run, STEP_10)} (step 10)" in said


def test_the_cli_resumes_a_run_with_flipped_weights_from_the_intact_step_and_ends_like_the_original(
    run, trained, builtin_host
):
    flip_tensor_bytes(checkpoint(run, STEP_20) / "model.safetensors")
    result = CliRunner().invoke(build_app(builtin_host), ["run", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert f"resuming from {checkpoint(run, STEP_10)} (step 10)" in result.stderr
    assert json.loads((run / "summary.json").read_text())["resumed_from_step"] == 10
    assert_same_metrics(metrics(run), metrics(trained))
    rewritten = Checkpoint.open(checkpoint(run, STEP_20))
    assert rewritten.tensors("model.safetensors")  # step 20 was trained again and written whole


def test_resume_with_every_checkpoint_damaged_stops_with_one_line_and_touches_nothing(run, builtin_host):
    for name in (STEP_10, STEP_20):
        truncate_to_half(checkpoint(run, name) / "model.safetensors")
    result = CliRunner().invoke(build_app(builtin_host), ["run", "--resume", str(run)])
    assert result.exit_code == 2
    assert f"{run / CHECKPOINTS}: no intact checkpoint to resume from" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.output
    assert [p.name for p in sorted((run / CHECKPOINTS).iterdir())] == [BEST, STEP_10, STEP_20]


def test_checkpoints_written_before_digests_still_resume_and_are_noted_unverified(run, builtin_host, capsys):
    state_file = checkpoint(run, STEP_20) / STATE
    state = json.loads(state_file.read_text())
    del state[DIGESTS]
    state_file.write_text(json.dumps(state))
    assert resume_in_process(run, builtin_host) == 20
    assert "(step 20) (written before checkpoints recorded digests: not verified)" in capsys.readouterr().err


def test_resume_says_when_there_is_no_checkpoint_to_resume_from(tmp_path, builtin_host, capsys):
    run_dir, _ = start(tmp_path, builtin_host)
    assert resume_in_process(run_dir, builtin_host) == 0
    assert f"resume: no checkpoint in {run_dir / CHECKPOINTS} yet; starting from step 0" in capsys.readouterr().err


def test_resume_copies_the_checkpoint_it_resumed_from_to_best_when_best_lost_it(run, builtin_host, capsys):
    # a kill between writing step 10 (the first, so the best so far) and copying it to best/
    shutil.rmtree(checkpoint(run, BEST))
    shutil.rmtree(checkpoint(run, STEP_20))
    assert resume_in_process(run, builtin_host) == 10
    assert Checkpoint.open(checkpoint(run, BEST)).step == 10
    assert "it is the best so far" in capsys.readouterr().err


def test_resume_leaves_a_newer_best_alone(run, builtin_host, capsys):
    best = Checkpoint.open(checkpoint(run, BEST))
    shutil.rmtree(checkpoint(run, STEP_20))
    assert resume_in_process(run, builtin_host) == 10
    assert Checkpoint.open(checkpoint(run, BEST)).step == best.step
    assert "best so far" not in capsys.readouterr().err


# -- best/ ------------------------------------------------------------------------------------------------


def test_best_is_a_copy_so_damage_to_its_step_does_not_reach_it(tmp_path, builtin_host):
    run_dir, spec = start(tmp_path, builtin_host, "train.max_steps=10")
    train_run(run_dir, spec, builtin_host.registry)
    step, best = checkpoint(run_dir, STEP_10) / "model.safetensors", checkpoint(run_dir, BEST) / "model.safetensors"
    assert os.stat(step).st_ino != os.stat(best).st_ino
    flip_tensor_bytes(step)
    Checkpoint.open(checkpoint(run_dir, BEST)).tensors("model.safetensors")  # still intact


# -- eval, sample, retrieve -------------------------------------------------------------------------------

COMMANDS = {
    "eval": ["--evaluator", "reconstruction"],
    "sample": ["--kind", "joint", "--out", "{tmp}/joint.png"],
    "retrieve": ["--test", "2"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("damage", ["flipped ema", "pickle ema", "truncated state.json"])
def test_commands_on_a_damaged_checkpoint_name_the_file_in_one_line(run, command, damage, builtin_host, tmp_path):
    file = STATE if damage == "truncated state.json" else "ema.safetensors"
    spoil = {"flipped ema": flip_tensor_bytes, "pickle ema": replace_by_pickle}.get(damage, truncate_to_half)
    spoil(checkpoint(run, STEP_20) / file)
    args = [command, str(run), *(a.format(tmp=tmp_path) for a in COMMANDS[command])]
    result = CliRunner().invoke(build_app(builtin_host), args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"{checkpoint(run, STEP_20) / file}: ")
    assert not (tmp_path / "joint.png").exists()
    best = CliRunner().invoke(build_app(builtin_host), [*args, "--checkpoint", "best"])
    assert best.exit_code == 0, best.output  # the damage did not reach best/


# -- leftovers --------------------------------------------------------------------------------------------


def test_resume_removes_a_half_written_checkpoint_and_restores_one_moved_aside(run, builtin_host, capsys):
    directory = run / CHECKPOINTS
    half = directory / ".tmp-step-00000030-4242"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"half")
    checkpoint(run, BEST).rename(directory / ".old-best-4242")  # killed between the two renames of a new best
    assert resume_in_process(run, builtin_host) == 20
    assert f"removed {half}: left by an interrupted checkpoint write" in capsys.readouterr().err
    assert sorted(p.name for p in directory.iterdir()) == [BEST, STEP_10, STEP_20]


def test_remove_temporaries_drops_a_replaced_checkpoint_whose_successor_is_in_place(tmp_path):
    (tmp_path / BEST).mkdir()
    (tmp_path / ".old-best-7").mkdir()
    (tmp_path / ".tmp-best-7").mkdir()
    assert sorted(p.name for p in remove_temporaries(tmp_path)) == [".old-best-7", ".tmp-best-7"]
    assert [p.name for p in tmp_path.iterdir()] == [BEST]


def test_a_run_that_fails_before_training_removes_the_directory_it_created(tmp_path, builtin_host):
    out = tmp_path / "runs"
    result = CliRunner().invoke(
        build_app(builtin_host), ["run", str(TINY), "--out", str(out), "--set", "train.batch_size=5000"]
    )
    assert result.exit_code == 2
    assert "train.batch_size: 5000 is more than the 1000 training pairs" in result.stderr
    assert "removed " in result.stderr
    assert list(out.iterdir()) == []  # neither the run directory nor its empty runs/tiny parent


def test_a_resumed_run_that_fails_keeps_its_directory(run, builtin_host):
    shutil.rmtree(run / CHECKPOINTS)
    (run / "metrics.jsonl").unlink()
    (run / "summary.json").unlink()
    spec_file = run / "spec.yaml"
    spec_file.write_text(spec_file.read_text().replace("batch_size: 32", "batch_size: 5000"))
    result = CliRunner().invoke(build_app(builtin_host), ["run", "--resume", str(run)])
    assert result.exit_code == 2
    assert (run / "spec.yaml").is_file()
