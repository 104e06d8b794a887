"""Caches go to ``$WYNERKIT_CACHE`` or the per-user cache directory, never into the data root.

Caches an older wynerkit wrote to ``<data root>/cache`` are still read there (a shared or read-only
data root keeps its trained classifiers), but nothing new is ever written into a data root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import platformdirs
import pytest
import torch
from digit_fakes import FakeDigits

import wynerkit_plugins.shared.digit_classifier as dc
from wynerkit import BuildContext
from wynerkit.data_root import CACHE_ENV, cache_root, old_cache_roots
from wynerkit.spec.models import SpecBuilder

SMALL = {"syndigits_train": 300, "syndigits_test": 100}


@pytest.fixture
def user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ``$WYNERKIT_CACHE``; the per-user cache directory lies under ``tmp_path``."""
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "wynerkit" / "cache"


@pytest.fixture
def data_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "data"
    root.mkdir()
    (root / "README.md").write_text("a shared data root")
    yield root
    root.chmod(0o755)  # read-only tests may have made it 0o555


def files_under(directory: Path) -> dict[str, int]:
    """Every file below ``directory`` with its modification time (ns)."""
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


def build_digits(builtin_host, root: Path):
    component = builtin_host.registry.get("dataset", "mnist-syndigits")
    spec = (
        SpecBuilder(builtin_host.registry)
        .variant(component)
        .model_validate({"name": component.name, "root": str(root), **SMALL})
    )
    return component.factory(spec, BuildContext(registry=builtin_host.registry, seed=3))


def test_the_default_cache_is_the_per_user_cache_directory(user_cache, data_root):
    assert cache_root() == user_cache == platformdirs.user_cache_path("wynerkit") / "cache"
    assert old_cache_roots(data_root) == []  # no <data root>/cache: nothing old to read


def test_wynerkit_cache_overrides_the_default_and_is_then_the_only_cache(monkeypatch, tmp_path, data_root):
    (data_root / "cache").mkdir()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine" and old_cache_roots(data_root) == []


def test_a_read_only_data_root_gets_no_cache_files(builtin_host, user_cache, data_root):
    before = files_under(data_root)
    data_root.chmod(0o555)  # read-only for a normal user (root ignores it: the listing below still holds)
    build_digits(builtin_host, data_root)
    assert files_under(data_root) == before and os.listdir(data_root) == ["README.md"]
    assert list((user_cache / "pairs").glob("*.npz")) and list((user_cache / "syndigits").glob("*.npz"))


def test_pairs_and_syndigits_an_older_wynerkit_cached_in_the_data_root_are_read_not_rewritten(
    builtin_host, monkeypatch, user_cache, data_root
):
    monkeypatch.setenv(CACHE_ENV, str(data_root / "cache"))  # where wynerkit 0.1 wrote them
    first = build_digits(builtin_host, data_root)
    old = files_under(data_root / "cache")
    monkeypatch.delenv(CACHE_ENV)
    again = build_digits(builtin_host, data_root)
    assert files_under(data_root / "cache") == old and not user_cache.exists()  # read there, nothing recomputed
    for split in ("train", "test"):
        assert np.array_equal(first.split(split).x_index.numpy(), again.split(split).x_index.numpy())
        assert torch.equal(first.split(split).__getitems__([0, 5])["y"], again.split(split).__getitems__([0, 5])["y"])


def test_a_classifier_an_older_wynerkit_cached_in_the_data_root_is_read_not_retrained(
    monkeypatch, user_cache, data_root
):
    data = FakeDigits()
    monkeypatch.setenv(CACHE_ENV, str(data_root / "cache"))
    first = dc.load_or_train(data, "x", data_root=data_root, epochs=2, seed=0, device=torch.device("cpu"))
    monkeypatch.delenv(CACHE_ENV)
    trained = []
    monkeypatch.setattr(dc, "train_net", lambda *args, **kwargs: trained.append(kwargs["label"]))
    again = dc.load_or_train(data, "x", data_root=data_root, epochs=2, seed=0, device=torch.device("cpu"))
    assert trained == [] and not user_cache.exists()
    assert again.test_accuracy == first.test_accuracy
