"""benchmarks/learning_curves.py: row merging, tables, planning, and resume-then-extend on the tiny spec."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from wynerkit.errors import UsageError
from wynerkit.plugins import PluginHost

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "specs" / "tiny.yaml"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("learning_curves", ROOT / "benchmarks" / "learning_curves.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["learning_curves"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


lc = _load()


def _row(rung: str, model: str, steps: int, seed: int = 0, variant: str | None = None, **values: Any) -> dict:
    return {"rung": rung, "model": model, "variant": variant, "seed": seed, "steps": steps, **values}


def test_merge_replaces_rows_of_the_same_key_and_keeps_the_others() -> None:
    old = [
        _row("mnist-mnist", "iiae", 500, **{"coherence.x2y": 0.1}),
        _row("quickstart", "variational-wyner", 500, **{"coherence.x2y": 0.2}),
        _row("quickstart", "variational-wyner", 500, variant="no-ci", **{"coherence.x2y": 0.3}),
    ]
    new = [_row("quickstart", "variational-wyner", 500, **{"coherence.x2y": 0.9})]
    merged = lc.merge_rows(old, new)
    assert [(r["rung"], r["model"], r["variant"], r["coherence.x2y"]) for r in merged] == [
        ("quickstart", "variational-wyner", None, 0.9),  # replaced; rungs in ladder order
        ("quickstart", "variational-wyner", "no-ci", 0.3),  # another variant is another key
        ("mnist-mnist", "iiae", None, 0.1),
    ]
    assert lc.merge_rows([], new) == new


def test_markdown_has_a_table_per_rung_with_seed_means_and_peers() -> None:
    rows = [
        _row("quickstart", "iiae", 500, seed=0, **{"coherence.x2y": 0.2, "fd.x2y": 10.0, "wall_s": 60.0}),
        _row("quickstart", "iiae", 500, seed=1, **{"coherence.x2y": 0.4, "fd.x2y": 20.0, "wall_s": 62.0}),
        _row("mnist-mnist", "variational-wyner", 500, variant="no-ci", **{"coherence.x2y": 0.5}),
    ]
    peers = [_row("quickstart", "jmvae", 500, **{"coherence.x2y": 0.7, "coherence.y2x": 0.6})]
    text = lc.markdown(rows, peers, {"lscpu_model_name": "Test CPU", "threads": 1, "cpu_count": 2})
    assert text.index("## quickstart") < text.index("## mnist-mnist")
    assert "| iiae | 500 | 2 | 0.300 ± 0.141 |" in text
    assert "| jmvae *peer* | 500 | 1 | 0.700 | 0.600 | - |" in text
    assert "| variational-wyner/no-ci | 500 | 1 | 0.500 |" in text
    assert "Test CPU, 1 torch thread(s)" in text


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = [_row("quickstart", "iiae", s, **dict.fromkeys(lc.COHERENCE, s / 1000)) for s in (500, 1000)]
    lc.plot(rows, [_row("quickstart", "jmvae", 500, **dict.fromkeys(lc.COHERENCE, 0.5))], tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0


def test_sets_need_a_label_and_leave_the_forced_keys_alone() -> None:
    with pytest.raises(UsageError) as caught:
        lc.check_sets(["objective.lambda_ci=0", "train.precision=bf16"], None)
    assert any("--label" in line for line in caught.value.problems)
    assert any("train.precision" in line for line in caught.value.problems)
    with pytest.raises(UsageError, match="--label a/b"):
        lc.check_sets([], "a/b")
    lc.check_sets(["objective.lambda_ci=0"], "no-ci")


def test_plans_apply_overlays_sets_and_forced_training(builtin_host: PluginHost, tmp_path: Path) -> None:
    curves = lc.plan_curves(
        [lc.RUNGS["mnist-syndigits-full"]],
        ["variational-wyner", "iiae"],
        [0, 1],
        [20, 40],
        builtin_host.registry,
        sets=["objective.lambda_rec=5"],
        label="rec5",
        out=tmp_path,
    )
    assert [(c.model, c.seed) for c in curves] == [
        ("variational-wyner", 0),
        ("variational-wyner", 1),
        ("iiae", 0),
        ("iiae", 1),
    ]
    for curve in curves:
        train = curve.spec.train
        assert (train.precision, train.epochs, train.max_steps) == ("fp32", None, 40)
        assert curve.spec.data.source == "full"
        assert curve.spec.objective.lambda_rec == 5
        assert curve.run_dir == tmp_path / "mnist-syndigits-full" / f"{curve.model}-rec5" / f"seed{curve.seed}"
    assert curves[2].spec.estimator is None  # the iiae overlay, as wynerkit sweep --baseline applies it
    lc.check_run_dirs(curves)  # nothing trained yet


class Checksum:
    """A stand-in evaluation: a checksum of the EMA weights; it also draws from torch's global RNG."""

    def __init__(self, tag: str = "v1") -> None:
        self.tag, self.calls = tag, 0

    @property
    def settings(self) -> dict[str, Any]:
        return {"checksum": self.tag}

    def __call__(self, model: torch.nn.Module, parts: Any, run_dir: Path, step: int) -> dict[str, float]:
        self.calls += 1
        torch.rand(100)  # must not move the training stream
        return {"checksum": float(sum(p.double().abs().sum() for p in model.parameters()))}


def _tiny(builtin_host: PluginHost, out: Path, steps: list[int]) -> Any:
    rung = lc.Rung("tiny", TINY)
    (curve,) = lc.plan_curves([rung], ["variational-wyner"], [0], steps, builtin_host.registry, out=out)
    return curve


def _comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("wall_s", "eval_s")} for r in rows]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for this test, then the count as it was: later tests compare with subprocesses."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_resuming_with_more_steps_gives_the_straight_runs_rows(builtin_host: PluginHost, tmp_path: Path) -> None:
    quiet = {"log": lambda line: None}
    straight = lc.run_curve(_tiny(builtin_host, tmp_path / "a", [7, 15]), [7, 15], Checksum(), builtin_host, **quiet)

    first = Checksum()
    short = lc.run_curve(_tiny(builtin_host, tmp_path / "b", [7]), [7], first, builtin_host, **quiet)
    curve = _tiny(builtin_host, tmp_path / "b", [7, 15])
    lc.check_run_dirs([curve])  # train.max_steps grew: still the same run
    again = Checksum()
    extended = lc.run_curve(curve, [7, 15], again, builtin_host, **quiet)

    assert again.calls == 1  # step 7 was evaluated before with the same settings
    assert _comparable(short) == _comparable(straight[:1])
    assert _comparable(extended) == _comparable(straight)
    assert any(k.startswith("term.R_") for k in straight[-1]) and any(k.startswith("pairing.") for k in straight[-1])
    assert 0 < extended[0]["wall_s"] < extended[1]["wall_s"]

    renewed = Checksum("v2")  # new settings: step 7, behind the run, is evaluated from its kept EMA weights
    assert (
        _comparable(lc.run_curve(curve, [7], renewed, builtin_host, **quiet))[0]["checksum"] == straight[0]["checksum"]
    )
    assert renewed.calls == 1


def test_a_run_directory_of_another_spec_is_refused(builtin_host: PluginHost, tmp_path: Path) -> None:
    curve = _tiny(builtin_host, tmp_path, [3])
    lc.run_curve(curve, [3], Checksum(), builtin_host, log=lambda line: None)
    other = lc.plan_curves(
        [lc.Rung("tiny", TINY, ("train.lr=0.01",))],
        ["variational-wyner"],
        [0],
        [3],
        builtin_host.registry,
        out=tmp_path,
    )
    with pytest.raises(UsageError, match=r"another spec \(differs in train.lr\)"):
        lc.check_run_dirs(other)
