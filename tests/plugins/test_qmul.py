"""The QMUL loader and ``qmul`` dataset on .mat fixtures in the real format, and (when present) the real files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.data.batching import collate_pairs
from wynerkit.data_root import DATA_ENV
from wynerkit.datafiles import DataSource, verify_source
from wynerkit.errors import UsageError
from wynerkit.hookspecs import hookimpl
from wynerkit.plugins import PluginHost, PluginSource, discover
from wynerkit.testing import check_component
from wynerkit_plugins.datasets.qmul import QMUL_SOURCES, Qmul, QmulParams, constant_source, load_qmul, qmul_source

N_TRAIN, N_TEST = 10, 4
DATA_DOC = Path(__file__).parents[2] / "docs" / "data.md"


def constant_images(values: np.ndarray, side: int = 256) -> np.ndarray:
    """uint8 ``[N, side, side]``; image i is filled with ``values[i]`` (so it survives resizing)."""
    return np.broadcast_to(values.astype(np.uint8)[:, None, None], (len(values), side, side)).copy()


def split_images(n: int) -> dict[str, np.ndarray]:
    """Sketch i is 255 - i and edge map i is 255 - 2i: a pair's values reveal its instance."""
    i = np.arange(n)
    return {"sketch": constant_images(255 - i), "edge": constant_images(255 - 2 * i)}


def write_set(root: Path, set_name: str, contents: dict[str, object] | None = None) -> DataSource:
    """Write a set's four .mat files under ``root/qmul/<set>``; a source with their checksums.

    ``contents`` overrides what is saved per file name (a dict of MATLAB variables, or raw bytes).
    """
    folder = root / "qmul" / set_name
    folder.mkdir(parents=True, exist_ok=True)
    default = {
        f"{set_name}_{kind}_db_{split}.mat": {"data": images}
        for split, n in (("train", N_TRAIN), ("test", N_TEST))
        for kind, images in split_images(n).items()
    }
    checksums = {}
    for name, value in {**default, **(contents or {})}.items():
        path = folder / name
        if isinstance(value, bytes):
            path.write_bytes(value)
        else:
            scipy.io.savemat(path, value)
        checksums[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return qmul_source(set_name, checksums)


def provider(root: Path, source: DataSource, *, seed: int = 0, **params: object) -> Qmul:
    return Qmul(QmulParams(set="shoes", **params), root, seed, source=source)


def test_loader_reads_the_real_format(tmp_path):
    source = write_set(tmp_path, "shoes")
    sketches, edges = load_qmul(tmp_path, "shoes", "train", source=source)
    expected = split_images(N_TRAIN)
    assert sketches.dtype == np.uint8 and sketches.shape == (N_TRAIN, 256, 256) and sketches.flags.c_contiguous
    assert np.array_equal(sketches, expected["sketch"]) and np.array_equal(edges, expected["edge"])


def test_sources_map_to_the_qmul_subfolders(builtin_host, tmp_path):
    assert {"qmul-shoes", "qmul-chairs"} <= set(builtin_host.registry.names("data_source"))
    assert QMUL_SOURCES["shoes"].folder(tmp_path) == tmp_path / "qmul" / "shoes"
    assert not QMUL_SOURCES["shoes"].downloadable
    assert "Sketch Me That Shoe" in QMUL_SOURCES["chairs"].how_to_get


def test_items_pair_sketch_i_with_edge_map_i(tmp_path):
    data = provider(tmp_path, write_set(tmp_path, "shoes"), size=16, valid_fraction=0.2)
    assert data.x_shape == data.y_shape == (1, 16, 16)
    sizes = {name: len(data.split(name)) for name in ("train", "valid", "test")}
    assert sizes == {"train": 8, "valid": 2, "test": N_TEST}
    seen = {}
    for name in ("train", "valid", "test"):
        items = data.split(name)
        seen[name] = [items[k]["x_label"] for k in range(len(items))]
        for k in range(len(items)):
            item = items[k]
            i = item["x_label"]
            assert item["y_label"] == i
            assert item["x"].dtype == torch.float32 and item["x"].shape == (1, 16, 16)
            # inverted: value 255 - i becomes i / 255, then [0, 1] -> [-1, 1]
            assert torch.allclose(item["x"], torch.full((1, 16, 16), i / 255 * 2 - 1), atol=1e-5)
            assert torch.allclose(item["y"], torch.full((1, 16, 16), 2 * i / 255 * 2 - 1), atol=1e-5)
    assert not set(seen["train"]) & set(seen["valid"])
    assert sorted(seen["train"] + seen["valid"]) == list(range(N_TRAIN))
    assert seen["test"] == list(range(N_TEST))


def test_without_inversion_the_white_background_is_plus_one(tmp_path):
    data = provider(tmp_path, write_set(tmp_path, "shoes"), size=8, invert=False)
    item = data.split("test")[0]
    assert item["x_label"] == 0 and torch.allclose(item["x"], torch.ones(1, 8, 8))


def test_resizing_stays_in_range_and_averages_thin_strokes(tmp_path):
    rng = np.random.default_rng(0)
    lines = np.full((N_TRAIN, 256, 256), 255, dtype=np.uint8)
    lines[:, :, ::4] = 0  # one-pixel black strokes every fourth column
    noise = rng.integers(0, 256, (N_TRAIN, 256, 256), dtype=np.uint8)
    source = write_set(
        tmp_path, "shoes", {"shoes_sketch_db_train.mat": {"data": lines}, "shoes_edge_db_train.mat": {"data": noise}}
    )
    batch = provider(tmp_path, source, size=64, valid_fraction=0).split("train").__getitems__(list(range(N_TRAIN)))
    assert batch["x"].min() >= -1 and batch["x"].max() <= 1 and batch["y"].min() >= -1 and batch["y"].max() <= 1
    # antialiased 4x downsampling averages the strokes in: away from the borders, ink 1/4 everywhere
    interior = batch["x"][..., 1:-1]
    assert torch.allclose(interior, torch.full_like(interior, 0.25 * 2 - 1), atol=1e-5)


def test_dataloader_fetches_whole_batches(tmp_path):
    items = provider(tmp_path, write_set(tmp_path, "shoes"), size=8).split("train")
    loader = torch.utils.data.DataLoader(items, batch_size=4, collate_fn=collate_pairs)
    batch = next(iter(loader))
    assert batch["x"].shape == (4, 1, 8, 8) and batch["x_label"].dtype == torch.int64
    for k in range(4):
        assert torch.equal(batch["x"][k], items[k]["x"]) and int(batch["y_label"][k]) == items[k]["y_label"]


def test_valid_split_depends_on_the_seed(tmp_path):
    source = write_set(tmp_path, "shoes")

    def valid_labels(seed: int) -> list[int]:
        items = provider(tmp_path, source, seed=seed, size=8, valid_fraction=0.3).split("valid")
        return [items[k]["x_label"] for k in range(len(items))]

    assert valid_labels(0) == valid_labels(0)
    assert len({tuple(valid_labels(seed)) for seed in range(5)}) > 1


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ({"images": constant_images(np.arange(3))}, r"no key 'data'; the file holds \['images'\]"),
        ({"data": np.zeros((3, 8, 8), dtype=np.float64)}, r"must be uint8 \[N, H, H\] .*found float64 \[3, 8, 8\]"),
        ({"data": np.zeros((8, 8), dtype=np.uint8)}, r"found uint8 \[8, 8\]"),
        ({"data": np.zeros((3, 8, 6), dtype=np.uint8)}, r"\(square images\), found uint8 \[3, 8, 6\]"),
        (b"not a MATLAB file at all", "not a readable MATLAB v5 file"),
    ],
    ids=["key", "dtype", "2-d", "not-square", "garbage"],
)
def test_malformed_files_name_the_file_and_what_was_found(tmp_path, contents, message):
    source = write_set(tmp_path, "shoes", {"shoes_sketch_db_test.mat": contents})
    with pytest.raises(ValueError, match=message) as info:
        load_qmul(tmp_path, "shoes", "test", source=source)
    assert str(tmp_path / "qmul" / "shoes" / "shoes_sketch_db_test.mat") in str(info.value)


def test_sketch_and_edge_counts_must_agree(tmp_path):
    source = write_set(tmp_path, "shoes", {"shoes_edge_db_test.mat": {"data": constant_images(np.arange(3))}})
    with pytest.raises(ValueError, match=r"sketches \[4, 256, 256\] in .* but edge maps \[3, 256, 256\]"):
        load_qmul(tmp_path, "shoes", "test", source=source)


def test_files_failing_their_checksums_are_refused(tmp_path):
    write_set(tmp_path, "shoes")
    with pytest.raises(UsageError) as info:
        load_qmul(tmp_path, "shoes", "train", source=QMUL_SOURCES["shoes"])  # checksums of the real files
    assert any("shoes_sketch_db_train.mat: sha256 mismatch" in p for p in info.value.problems)
    assert "Sketch Me That Shoe" in info.value.problems[-1]


class RegistersSets:
    """A third-party plugin that adds data sources for QMUL sets (e.g. the handbags it has checksums for)."""

    def __init__(self, *sources: DataSource) -> None:
        self.sources = sources

    @hookimpl
    def wynerkit_register_data_sources(self, register) -> None:
        for source in self.sources:
            register(source.name, constant_source(source))


def host_with(*sources: DataSource) -> PluginHost:
    host = PluginHost.load([*discover(builtin_only=True), PluginSource.from_object("bags", RegistersSets(*sources))])
    assert not host.errors, [str(e) for e in host.errors]
    return host


def test_a_set_without_a_data_source_is_refused_in_one_line_naming_data_set(builtin_host, tmp_path):
    write_set(tmp_path, "handbags")  # files present, but nothing to verify them against
    with pytest.raises(UsageError) as info:
        check_component(builtin_host, "dataset", "qmul", {"set": "handbags", "root": str(tmp_path), "size": 8})
    assert info.value.problems == [
        "data.set: 'handbags' has no verified data source; sets with one: chairs, shoes "
        "(a plugin adds this one by registering a data source named 'qmul-handbags')"
    ]
    assert info.value.problems[0] in DATA_DOC.read_text().splitlines()  # docs/data.md quotes it exactly


def test_a_plugin_that_registers_a_source_for_a_new_set_makes_the_dataset_read_it(tmp_path):
    host = host_with(write_set(tmp_path, "handbags"))
    data = check_component(host, "dataset", "qmul", {"set": "handbags", "root": str(tmp_path), "size": 8})
    assert {name: len(data.split(name)) for name in ("train", "valid", "test")} == {"train": 9, "valid": 1, "test": 4}
    assert data.describe()["data_source"] == "qmul-handbags" and data.describe()["set"] == "handbags"
    assert data.split("test")[3]["x_label"] == 3


def test_the_new_sets_files_are_verified_against_its_source(tmp_path):
    host = host_with(write_set(tmp_path, "handbags"))
    (tmp_path / "qmul" / "handbags" / "handbags_edge_db_test.mat").write_bytes(b"swapped")
    with pytest.raises(UsageError) as info:
        check_component(host, "dataset", "qmul", {"set": "handbags", "root": str(tmp_path), "size": 8})
    assert "qmul-handbags: " in info.value.problems[0] and "handbags_edge_db_test.mat" in info.value.problems[0]


def test_a_source_that_does_not_list_the_sets_files_is_named(tmp_path):
    source = write_set(tmp_path, "handbags")
    partial = DataSource(name=source.name, subdir=source.subdir, files=source.files[:1])
    with pytest.raises(UsageError, match=r"data source 'qmul-handbags' lists no handbags_edge_db_train\.mat"):
        check_component(host_with(partial), "dataset", "qmul", {"set": "handbags", "root": str(tmp_path)})


def test_a_set_without_a_source_stops_a_run_with_one_usage_line(cli, tmp_path):
    tiny = Path(__file__).parents[1] / "specs" / "tiny.yaml"
    result = cli("run", tiny, "--out", tmp_path / "runs", "--set", f"data={{name: qmul, set: bags, root: {tmp_path}}}")
    assert result.exit_code == 2, result.output
    assert (
        "data.set: 'bags' has no verified data source; sets with one: chairs, shoes "
        "(a plugin adds this one by registering a data source named 'qmul-bags')"
    ) in result.stderr.splitlines()
    assert "Traceback" not in result.output


def real_qmul_root() -> Path:
    """The data root holding the real QMUL shoes and chairs, or skip."""
    root = Path(os.environ.get(DATA_ENV, "").strip() or "/nonexistent").expanduser()
    if not all((source.folder(root)).is_dir() for source in QMUL_SOURCES.values()):
        pytest.skip(f"the QMUL files are not under ${DATA_ENV}/qmul")
    return root


@pytest.mark.parametrize(("set_name", "n_train", "n_test"), [("shoes", 304, 115), ("chairs", 200, 97)])
def test_real_files_verify_and_have_the_published_sizes(builtin_host, set_name, n_train, n_test):
    root = real_qmul_root()
    assert all(status.verified for status in verify_source(QMUL_SOURCES[set_name], root))
    result = CliRunner().invoke(build_app(builtin_host), ["data", "verify", f"qmul-{set_name}", "--root", str(root)])
    assert result.exit_code == 0, result.output
    for split, n in (("train", n_train), ("test", n_test)):
        sketches, edges = load_qmul(root, set_name, split, source=QMUL_SOURCES[set_name])
        assert sketches.shape == edges.shape == (n, 256, 256)


def test_real_shoes_honour_the_dataset_contract(builtin_host):
    root = real_qmul_root()
    data = check_component(builtin_host, "dataset", "qmul", {"set": "shoes", "root": str(root)})
    assert {name: len(data.split(name)) for name in ("train", "valid", "test")} == {
        "train": 274,
        "valid": 30,
        "test": 115,
    }
    assert data.describe()["checksums_verified"] is True


def test_a_sketch_image_file_reads_as_the_dataset_makes_its_sketches(tmp_path):
    data = provider(tmp_path, write_set(tmp_path, "shoes"), size=16)
    sketch = split_images(N_TEST)["sketch"][2]  # test sketch 2, a 256x256 uint8 image
    Image.fromarray(sketch).save(tmp_path / "sketch.png")
    read = data.read_x(tmp_path / "sketch.png")
    assert read.shape == (1, 1, 16, 16)
    assert torch.equal(read[0], data.split("test")[2]["x"])
    Image.fromarray(sketch[:, :200]).save(tmp_path / "tall.png")
    with pytest.raises(ValueError, match="200x256; crop or pad it to a square"):
        data.read_x(tmp_path / "tall.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image file"):
        data.read_x(tmp_path / "text.png")
