"""`wynerkit run` and `wynerkit eval` give the same numbers for the same checkpoint (issue 15, item 9).

The dataset here redraws its training pairs per epoch (``set_epoch``, as the docs allow) and the
evaluator reads the training split and draws from torch's global RNG while it is built: the two
ways evaluation used to depend on where training left off.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from wynerkit import NoParams, hookimpl
from wynerkit.cli.app import build_app
from wynerkit.evaluation.evaluate import EVALUATED, Origin, default_evaluator_spec, eval_context, evaluate_model
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit_plugins.datasets.gaussian_pairs import GaussianPairs, GaussianPairsParams, PairTensors

CPU = torch.device("cpu")
TINY = Path(__file__).parent / "specs" / "tiny.yaml"
SMALL_EPOCHS = "data={name: redrawn-pairs, x_dim: 8, y_dim: 8, n_train: 64, n_valid: 64, n_test: 64}"
"""64 training pairs in batches of 32: the tiny spec's 20 steps span 10 epochs."""


class RedrawnTrainPairs(PairTensors):
    """Training pairs whose y is re-paired with another x at every epoch (a cyclic shift by the epoch)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__(x, y)
        self.drawn = y

    def set_epoch(self, epoch: int) -> None:
        self.y = self.drawn.roll(epoch, dims=0)


class RedrawnPairs(GaussianPairs):
    def _generate(self, name: Any) -> PairTensors:
        pairs = super()._generate(name)
        return RedrawnTrainPairs(pairs.x, pairs.y) if name == "train" else pairs


class TrainSplitView:
    """Numbers that move with the training split's pairing and with the global RNG at build time."""

    def __init__(self) -> None:
        self.drawn_when_built = float(torch.rand(()))

    def evaluate(self, run: Any) -> dict[str, float]:
        train = run.data.split("train")
        made = run.model.x_to_y(train.x[:16].to(run.device)).require("y")[0]
        return {
            "view.pairing": float((made - train.y[:16].to(run.device)).square().mean()),
            "view.built": self.drawn_when_built,
            "view.sampled": float(torch.randn(())),
        }


class FirstTrainPair:
    def evaluate(self, run: Any) -> dict[str, float]:
        return {"first.y": float(run.data.split("train").y[0].sum())}


class AgreementPlugin:
    @hookimpl
    def wynerkit_register_datasets(self, register):
        register(
            "redrawn-pairs",
            lambda params, context: RedrawnPairs(params, seed=context.seed),
            params=GaussianPairsParams,
        )

    @hookimpl
    def wynerkit_register_evaluators(self, register):
        register("train-view", lambda params, context: TrainSplitView(), params=NoParams, summary="test probe")
        register("first-pair", lambda params, context: FirstTrainPair(), params=NoParams, summary="test probe")


@pytest.fixture(scope="module")
def host() -> PluginHost:
    loaded = PluginHost.load(
        [*discover(builtin_only=True), PluginSource.from_object("agreement", AgreementPlugin())], blocked=()
    )
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return loaded


def metrics(run_dir: Path) -> dict[str, float]:
    summary = json.loads((run_dir / "summary.json").read_text())
    keys = [key for entry in summary[EVALUATED].values() for key in entry["keys"]]
    return {key: summary[key] for key in keys}


def test_run_and_eval_give_the_same_numbers_for_the_same_checkpoint(host, tmp_path):
    cli = CliRunner()
    app = build_app(host)
    evaluate = "evaluate=[{name: train-view}, {name: reconstruction, figure_items: 4}]"
    ran = cli.invoke(app, ["run", str(TINY), "--out", str(tmp_path), "--set", SMALL_EPOCHS, "--set", evaluate])
    assert ran.exit_code == 0, ran.output
    run_dir = Path(ran.stdout.strip().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 10, "the run must end many epochs after the one a fresh dataset starts in"
    after_run = metrics(run_dir)
    assert {"view.pairing", "view.built", "view.sampled", "recon.x2y"} <= set(after_run)

    evaluated = cli.invoke(app, ["eval", str(run_dir)])
    assert evaluated.exit_code == 0, evaluated.output
    assert metrics(run_dir) == after_run


def test_evaluation_sees_the_train_split_at_epoch_zero_and_leaves_the_trainers_where_it_was(host, tmp_path):
    params = GaussianPairsParams(n_train=8, n_valid=8, n_test=8)
    fresh, trained = RedrawnPairs(params, seed=3), RedrawnPairs(params, seed=3)
    trained.split("train").set_epoch(5)
    left_at = trained.split("train").y.clone()
    spec = [default_evaluator_spec(host.registry, "first-pair")]
    seen = [
        evaluate_model(
            tmp_path / name,
            eval_context(tmp_path / name, nn.Linear(1, 1), data, CPU, 0),
            host.registry,
            spec,
            Origin("latest", 0),
        )
        for name, data in (("fresh", fresh), ("trained", trained))
    ]
    assert seen[0] == seen[1]
    assert torch.equal(trained.split("train").y, left_at), "the trainer's split must stay at its epoch"
