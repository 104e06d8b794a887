"""The Sketchy zero-shot pipeline end to end on a generated miniature: features -> train -> retrieval -> figure.

The miniature is in the released feature layout (``features/split1/...``): sketch and photo features
of 6 training and 3 unseen test classes, 16-d, each a class prototype seen through a different fixed
linear map per modality plus noise, so a model that learns the maps retrieves unseen classes. The
dataset is the real ``SketchyFeatures`` registered by a test plugin (the built-in one verifies the
real class lists' checksums; here they may be generated).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from test_sketchy import write_lists
from typer.testing import CliRunner

from wynerkit import hookimpl
from wynerkit.cli.app import build_app
from wynerkit.datafiles import DataSource
from wynerkit.plugins import PluginHost, PluginSource, discover, set_host
from wynerkit_plugins.datasets.sketchy import SketchyFeatures, SketchyFeaturesParams
from wynerkit_plugins.datasets.sketchy_layout import ClassLists, feature_files, load_class_lists, zero_shot_split

DIM = 16
PER_CLASS = {"sketch": 24, "image": 12}


def write_miniature(root: Path, class_lists: ClassLists) -> None:
    """6 train and 3 test classes of split 1: x = A p_c + noise, y = B p_c + noise for class prototype p_c."""
    rng = np.random.default_rng(0)
    maps = {"sketch": rng.standard_normal((DIM, DIM)), "image": rng.standard_normal((DIM, DIM))}
    split = zero_shot_split(class_lists, 1)
    for part, classes in (("train", split.train[:6]), ("test", split.test[:3])):
        prototypes = {c: 3 * rng.standard_normal(DIM) for c in classes}
        for kind, per_class in PER_CLASS.items():
            rows = [(c, j) for c in classes for j in range(per_class)]
            features = np.stack([maps[kind] @ prototypes[c] + rng.standard_normal(DIM) for c, _ in rows])
            features_path, paths_path = feature_files(root, 1, part, kind)
            features_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(features_path, features.astype(np.float32))
            folder = "sketch/tx_000000000000" if kind == "sketch" else "photo"
            np.save(paths_path, np.array([f"{folder}/{c}/n{j:03d}.png" for c, j in rows]))


def host_with_miniature(source: DataSource) -> PluginHost:
    class Miniature:
        @hookimpl
        def wynerkit_register_datasets(self, register):
            def make(params, context):
                return SketchyFeatures(params, params.root, context.seed, source=source)

            register("sketchy-miniature", make, params=SketchyFeaturesParams)

    return PluginHost.load(
        [*discover(builtin_only=True), PluginSource.from_object("miniature", Miniature())], blocked=()
    )


def spec_for(root: Path) -> dict:
    """specs/paper/sketchy-zs.yaml's objective and networks, scaled to the miniature and a few hundred steps."""
    shipped = yaml.safe_load((Path(__file__).parents[2] / "specs/paper/sketchy-zs.yaml").read_text())
    vector = {
        "name": "vector",
        "dim": DIM,
        "hidden": 32,
        "layers": 1,
        "features": 32,
        "decoder_hidden": 32,
        "loss": "l2",
    }
    return {
        **shipped,
        "name": "sketchy-miniature",
        "data": {"name": "sketchy-miniature", "split": 1, "root": str(root), "valid_fraction": 0.2},
        "model": {"name": "variational-wyner", "latent": {"z": 8, "u": 4, "v": 4}, "x": vector, "y": vector},
        "estimator": {"name": "adversarial-js", "hidden": 32, "embed": 16, "instance_noise": 0.25},
        "train": {"max_steps": 300, "batch_size": 32, "lr": 2e-3, "log_every": 100, "checkpoint": {"every": 300}},
        "evaluate": [{"name": "retrieval", "mode": "category", "k": [10, 30], "figure_queries": 4, "figure_top": 5}],
    }


@pytest.fixture(scope="module")
def miniature_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DataSource]:
    root, source = write_lists(tmp_path_factory.mktemp("sketchy-data"))
    write_miniature(root, load_class_lists(root, source=source))
    return root, source


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, miniature_root) -> tuple[Path, PluginHost]:
    """One run of the miniature (about 30 s on 2 cores), shared by the tests of this module."""
    root, source = miniature_root
    tmp_path = tmp_path_factory.mktemp("sketchy-run")
    host = host_with_miniature(source)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_for(root)))
    result = CliRunner().invoke(build_app(host), ["run", str(spec), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1]), host


@pytest.fixture(autouse=True)
def _miniature_host(trained) -> None:
    set_host(trained[1])  # `wynerkit retrieve` opens runs with the process-wide host


def test_features_train_retrieve_and_draw(trained):
    run_dir, host = trained
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = summary  # evaluators merge their keys into the summary
    assert metrics["retrieval.queries"] == 3 * PER_CLASS["sketch"]
    assert metrics["retrieval.gallery"] == 3 * PER_CLASS["image"]  # every test photo, via gallery()
    # unseen classes, 3 of them: chance mAP and P@10 are about 1/3 (measured: 0.66 and 0.51 at 300 steps)
    assert metrics["retrieval.map"] > 0.5 and metrics["retrieval.p@10"] > 0.45
    assert metrics["retrieval.map_interp"] >= metrics["retrieval.map"]
    figure = np.asarray(Image.open(run_dir / "figures" / "retrieval.png"))
    assert figure.shape[0] > figure.shape[1] / 6 * 4 * 0.5  # four query rows of six cells

    runner = CliRunner()
    app = build_app(host)
    result = runner.invoke(app, ["retrieve", str(run_dir), "--test", "3", "--top", "4", "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3
    for record in records:
        assert [r["rank"] for r in record["results"]] == [1, 2, 3, 4]
        cosines = [r["cosine"] for r in record["results"]]
        assert cosines == sorted(cosines, reverse=True)
        assert all(r["relevant"] == (r["label"] == record["label"]) for r in record["results"])


def test_query_files_rank_like_the_same_test_queries_and_bad_files_are_named(trained, miniature_root, tmp_path):
    run_dir, host = trained
    root, _ = miniature_root
    sketches = np.load(feature_files(root, 1, "test", "sketch")[0])
    app, runner = build_app(host), CliRunner()
    from_test = runner.invoke(app, ["retrieve", str(run_dir), "--test", str(len(sketches)), "--json"])
    by_name = {r["query"]: r for r in map(json.loads, from_test.stdout.splitlines())}
    np.save(tmp_path / "two.npy", sketches[:2])
    figure = tmp_path / "found.png"
    result = runner.invoke(
        app, ["retrieve", str(run_dir), "--query", str(tmp_path / "two.npy"), "--json", "--figure", str(figure)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in records] == ["two.npy[0]", "two.npy[1]"]
    for i, record in enumerate(records):
        assert record["label"] is None and all(r["relevant"] is None for r in record["results"])
        assert [r["gallery"] for r in record["results"]] == [
            r["gallery"] for r in by_name[f"test query {i}"]["results"]
        ]
    assert Image.open(figure).size[0] > 0

    np.save(tmp_path / "wrong.npy", sketches[:2, :5])
    bad = runner.invoke(app, ["retrieve", str(run_dir), "--query", str(tmp_path / "wrong.npy")])
    assert bad.exit_code == 2
    assert "wrong.npy: shape [2, 5] is neither one x item [16]" in bad.stderr
    missing = runner.invoke(app, ["retrieve", str(run_dir)])
    assert missing.exit_code == 2 and "pass --query FILE" in missing.stderr
