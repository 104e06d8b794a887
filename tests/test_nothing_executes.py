"""Files wynerkit reads are data, never code: booby-trapped specs, weights and queries are refused
before anything in them runs. Each trap, if it were executed, would create a marker file."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

TINY = Path(__file__).parent / "specs" / "tiny.yaml"


class Trap:
    """Unpickling this calls ``Path.touch(marker)``: the marker exists only if something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_a_spec_with_a_python_tag_is_refused_and_not_run(tmp_path, cli):
    marker = tmp_path / "ran"
    spec = tmp_path / "trap.yaml"
    spec.write_text(TINY.read_text() + f'note: !!python/object/apply:pathlib.Path.touch ["{marker}"]\n')
    result = cli("spec", "validate", spec)
    assert result.exit_code == 2 and str(spec) in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize("name", ["ema.safetensors", "model.safetensors"])
def test_pickled_weights_in_a_checkpoint_are_refused_and_not_unpickled(tiny_run, tmp_path, cli, name):
    """Resume reads every weight file; eval reads the EMA weights (the ones it evaluates)."""
    marker = tmp_path / "ran"
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for weights in run.glob(f"checkpoints/*/{name}"):
        torch.save({"weight": Trap(marker)}, weights)  # torch.load without weights_only would run it
    results = [cli("run", "--resume", run)]
    if name == "ema.safetensors":
        results.append(cli("eval", run, "--evaluator", "reconstruction"))
    for result in results:
        assert result.exit_code == 2 and name in result.stderr, result.output
    assert not marker.exists()


def test_a_pickled_npy_query_is_refused_and_not_unpickled(tiny_run, tmp_path, cli):
    marker = tmp_path / "ran"
    query = tmp_path / "query.npy"
    np.save(query, np.array([Trap(marker)], dtype=object), allow_pickle=True)
    assert pickle.loads(pickle.dumps(Trap(tmp_path / "probe"))) is None  # the trap works when unpickled
    assert (tmp_path / "probe").exists()
    result = cli("retrieve", tiny_run, "--query", query, "--json")
    assert result.exit_code == 2 and str(query) in result.stderr
    assert not marker.exists()
