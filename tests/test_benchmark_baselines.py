"""The issue-16 benchmark helpers: nearest-neighbour baselines, seed summaries, and the GPU script's dry run."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


nn = _load("nn_baselines")
sweep_results = _load("sweep_results")


class Pairs:
    """A split of (x, y, label) triples, read item by item (the plain ``__getitem__`` protocol)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor) -> None:
        self.x, self.y, self.labels = x, y, labels

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        label = int(self.labels[i])
        return {"x": self.x[i], "y": self.y[i], "x_label": label, "y_label": label}


class Provider:
    def __init__(self, train: Pairs, test: Pairs) -> None:
        self.splits = {"train": train, "test": test}

    def split(self, name: str) -> Pairs:
        return self.splits[name]


def _pairs(n: int, generator: torch.Generator, *, noise: float, classes: int = 4) -> Pairs:
    """y is x (a random picture) seen through a brightness change, a colour copy and some noise."""
    x = torch.rand(n, 1, 8, 8, generator=generator) * 2 - 1
    y = (0.5 * x + 0.1).expand(n, 3, 8, 8) + noise * torch.randn(n, 3, 8, 8, generator=generator)
    return Pairs(x, y.contiguous(), torch.arange(n) % classes)


def test_pixels_find_each_sketch_s_own_picture_when_y_is_x_seen_differently() -> None:
    generator = torch.Generator().manual_seed(0)
    data = Provider(_pairs(64, generator, noise=0.01), _pairs(32, generator, noise=0.01))
    rows = nn.baseline_rows(data, "instance", [1, 10], components=8, blur=1.0)
    assert set(rows) == {"pixel-nn", "pca-nn", "blurred-pixel-nn", "blurred-pixel-cca"}
    assert rows["pixel-nn"]["retrieval.acc@1"] == 1.0
    assert rows["blurred-pixel-cca"]["retrieval.acc@1"] == 1.0  # a linear relation is what CCA finds
    assert rows["pixel-nn"]["retrieval.queries"] == 32.0
    assert rows["pixel-nn"]["retrieval.gallery"] == 32.0


def test_pixels_rank_at_chance_when_y_is_unrelated_to_x() -> None:
    generator = torch.Generator().manual_seed(1)
    train, test = _pairs(64, generator, noise=0.0), _pairs(200, generator, noise=0.0)
    test.y = torch.rand_like(test.y)  # no pair shares anything
    rows = nn.baseline_rows(Provider(train, test), "instance", [1, 10], components=8)
    assert rows["pixel-nn"]["retrieval.acc@10"] < 0.15  # chance: 10 / 200


def test_category_scores_are_the_evaluator_s_p_at_k_and_map() -> None:
    generator = torch.Generator().manual_seed(2)
    data = Provider(_pairs(40, generator, noise=0.0), _pairs(40, generator, noise=0.0))
    rows = nn.baseline_rows(data, "category", [5], components=4)
    # every query's own picture is ranked first and shares its class
    assert rows["pixel-nn"]["retrieval.map"] > 0.25  # chance is about a quarter
    assert 0.0 <= rows["pixel-nn"]["retrieval.p@5"] <= 1.0
    assert set(rows["pca-nn"]) == {"retrieval.p@5", "retrieval.map", "retrieval.queries", "retrieval.gallery"}


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.1, 10.0),
    shift=st.floats(-5.0, 5.0),
    seed=st.integers(0, 2**16),
    blur=st.sampled_from([0.0, 1.0]),
)
def test_pixel_vectors_are_unit_length_centred_and_blind_to_contrast_and_brightness(
    scale: float, shift: float, seed: int, blur: float
) -> None:
    images = torch.rand(3, 2, 12, 12, generator=torch.Generator().manual_seed(seed))
    vectors = nn.pixel_vectors(images, 12, blur)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(vectors.mean(dim=1), torch.zeros(3), atol=1e-6)
    assert torch.allclose(nn.pixel_vectors(images * scale + shift, 12, blur), vectors, atol=1e-4)


def test_pixel_vectors_resize_the_other_side_to_the_queries_size() -> None:
    assert nn.pixel_vectors(torch.rand(2, 3, 32, 32), 28).shape == (2, 28 * 28)


def test_gaussian_blur_keeps_a_constant_picture_and_spreads_a_point() -> None:
    flat = torch.full((1, 1, 9, 9), 0.3)
    assert torch.allclose(nn._gaussian_blur(flat, 1.0), flat, atol=1e-6)
    point = torch.zeros(1, 1, 9, 9)
    point[..., 4, 4] = 1.0
    blurred = nn._gaussian_blur(point, 1.0)
    assert math.isclose(float(blurred.sum()), 1.0, rel_tol=1e-5)
    assert float(blurred[..., 4, 4]) < 0.2 and float(blurred[..., 4, 5]) > 0.05


finished = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["a", "b"]),
        "m": st.floats(-100, 100),
        "status": st.sampled_from(["finished", "diverged"]),
    }
)


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(finished, max_size=12))
def test_summaries_are_the_mean_and_sample_std_of_the_finished_rows(rows: list[dict[str, Any]]) -> None:
    summary = {entry["model"]: entry for entry in sweep_results.summarise(rows, ["m"], ["model"])}
    for model in ("a", "b"):
        values = [r["m"] for r in rows if r["model"] == model and r["status"] == "finished"]
        if not values:
            assert model not in summary
            continue
        assert summary[model]["n"] == len(values)
        assert math.isclose(summary[model]["m"]["mean"], statistics.fmean(values), rel_tol=1e-9, abs_tol=1e-9)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        assert math.isclose(summary[model]["m"]["std"], std, rel_tol=1e-9, abs_tol=1e-9)


def _gpu_script(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "WYNERKIT_DATA"} | {"PYTHON": sys.executable} | env
    return subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_paper.sh")], capture_output=True, text=True, env=environment, check=False
    )


@pytest.mark.slow  # bash and two Python subprocesses; CI runs the slow tests too
def test_the_gpu_script_s_dry_run_validates_the_paper_spec_and_prints_both_commands(tmp_path: Path) -> None:
    done = _gpu_script(tmp_path, DRY_RUN="1")
    assert done.returncode == 0, done.stderr
    assert "specs/paper/mnist-svhn-addone.yaml: valid" in done.stderr
    run, sweep = done.stdout.strip().splitlines()
    assert "wynerkit run specs/paper/mnist-svhn-addone.yaml --set train.device=cuda" in run
    assert "benchmarks/addone_sweep.py --spec specs/paper/mnist-svhn-addone.yaml" in sweep
    help_text = subprocess.run(
        [sys.executable, str(BENCHMARKS / "addone_sweep.py"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for option in ("--spec", "--seeds", "--set", "--out", "--results"):
        assert option in help_text and option in sweep


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_the_gpu_script_refuses_in_one_line_without_cuda(tmp_path: Path) -> None:
    done = _gpu_script(tmp_path, WYNERKIT_DATA=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "gpu_paper.sh: no CUDA device is visible to torch; run this on a GPU machine (DRY_RUN=1 to check it)"
    )


def _cell(sweep: Path, name: str, model: str, seed: int, status: str, **metrics: float) -> None:
    cell = sweep / "cells" / name
    cell.mkdir(parents=True)
    spec = {"seed": seed, "model": {"name": model}, "objective": {"lambda_ci": 0.5}}
    (cell / "spec.resolved.json").write_text(json.dumps(spec))
    (cell / "summary.json").write_text(json.dumps({"status": status, **metrics}))


def test_collected_rows_read_every_ended_cell_of_several_sweeps_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _cell(first, "objective.lambda_ci=0.5__seed=0", "variational-wyner", 0, "finished", m=1.0)
    _cell(first, "baseline=iiae__seed=0", "iiae", 0, "diverged")
    _cell(first, "objective.lambda_ci=0.5__seed=1", "variational-wyner", 1, "running", m=9.0)
    _cell(second, "seed=0", "variational-wyner", 0, "finished", m=5.0)  # a copy, under another name
    _cell(second, "objective.lambda_ci=0.5__seed=2", "variational-wyner", 2, "finished", m=3.0, other=7.0)
    rows = sweep_results.collected_rows([first, second], ["m"], {"dataset": "d"})
    assert sorted(rows, key=lambda r: (r["model"], r["seed"])) == [
        {"dataset": "d", "model": "iiae", "lambda_ci": None, "seed": 0, "status": "diverged"},
        {"dataset": "d", "model": "variational-wyner", "lambda_ci": 0.5, "seed": 0, "status": "finished", "m": 1.0},
        {"dataset": "d", "model": "variational-wyner", "lambda_ci": 0.5, "seed": 2, "status": "finished", "m": 3.0},
    ]


@pytest.mark.parametrize(
    ("task_name", "param", "published"), [("zeroshot", "anneal_steps", 2000), ("addone", "recon_scale", 10)]
)
def test_the_iiae_budget_spec_is_the_task_spec_under_the_iiae_overlay(
    tmp_path: Path, builtin_host, task_name: str, param: str, published: int
) -> None:
    from wynerkit.spec.loading import load_spec

    _load("zeroshot_digits")
    _load("addone_sweep")
    budget = _load("iiae_budget")
    task = budget.TASKS[task_name]
    path = budget.iiae_spec(task, tmp_path)
    spec = load_spec(path, builtin_host.registry, [f"{budget.TERM}.{param}=0"]).spec
    original = load_spec(task.spec, builtin_host.registry).spec
    assert spec.model.name == "iiae"
    assert spec.estimator is None
    assert getattr(spec.objective.terms["IIAE"], param) == 0, "the swept key reaches the term's params"
    dumped, expected = spec.model_dump(mode="json"), original.model_dump(mode="json")
    for key in ("data", "train", "evaluate", "seed"):
        assert dumped[key] == expected[key], key
    for key in ("latent", "x", "y"):
        assert dumped["model"][key] == expected["model"][key], key
    reference = budget.reference_rows(task)
    assert sorted(row["seed"] for row in reference) == [0, 1, 2]
    assert {row[param] for row in reference} == {published}, "gr8joo's value, read from the overlay"
