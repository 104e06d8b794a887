"""The execution switches of ``train`` (channels-last, compile) and feature reuse: faster, same numbers.

Each test trains the same spec and seed a few iterations two ways and compares every value each
iteration logged (losses, terms, critic accuracies): a switch that changed the arithmetic beyond
rounding, or the random draws, would show.
(Weights are not compared: Adam turns rounding-level gradient differences into full-size steps.)
The image spec uses the paper networks (BatchNorm, convolutions, transposed convolutions) at a small
batch, where memory layout and compilation matter.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import Tensor

import wynerkit.training.speedups as speedups
from wynerkit.data.loading import as_sample, epoch_batches, fetch
from wynerkit.plugins import PluginHost
from wynerkit.spec.models import TrainSpec, build_run_spec_model
from wynerkit.training.assembly import assemble
from wynerkit.training.speedups import (
    batch_to_channels_last,
    compile_sequentials,
    cpu_flags,
    has_native_bf16,
    resolve_execution,
)
from wynerkit.training.trainer import Trainer

ITERATIONS = 3
IMAGE_SPEC: dict[str, Any] = {
    "name": "speedups",
    "seed": 0,
    "data": {"name": "mnist-syndigits", "source": "embedded"},
    "model": {
        "name": "variational-wyner",
        "latent": {"z": 4, "u": 2, "v": 2},
        "x": {"name": "image", "channels": 1, "height": 28, "preset": "paper", "canvas": 32, "fit": "resize"},
        "y": {"name": "image", "channels": 3, "height": 32, "preset": "paper"},
    },
    "estimator": {"name": "adversarial-js", "hidden": 32, "embed": 16},
    "objective": {"terms": {"D_joint": 1, "D_x2y": 1, "I_x2y": 1, "R_xy2x": 1, "R_x2y": 1, "R_y2x": 1}},
    "train": {"max_steps": ITERATIONS, "batch_size": 8, "lr": 1.0e-5, "device": "cpu"}
    | {"precision": "fp32", "channels_last": False, "compile": False},
}


def trained(
    host: PluginHost, tmp_path: Path, *, reuse: bool = True, **train: Any
) -> tuple[Trainer, list[dict[str, Tensor]]]:
    """A trainer after ``ITERATIONS`` iterations on the first batches, and the values each iteration logged."""
    spec = IMAGE_SPEC | {"train": IMAGE_SPEC["train"] | train}
    parts = assemble(build_run_spec_model(host.registry).model_validate(spec), host.registry)
    if not reuse:
        parts.model.reusing_features = nullcontext  # a scope that reuses nothing: every use is encoded afresh
    trainer = Trainer(parts, tmp_path)
    split = parts.data.split("train")
    logged = []
    for number, indices in enumerate(epoch_batches(split, 8, 0, 0)[:ITERATIONS], 1):
        logged.append(trainer.iteration(as_sample(fetch(split, indices), parts.device), number))
    return trainer, logged


def assert_same_values(a: list[dict[str, Tensor]], b: list[dict[str, Tensor]]) -> None:
    """Every logged loss, term and accuracy of every iteration agrees up to float rounding.

    Adam normalises tiny gradients to full-size steps, so rounding-level differences move weights by up to
    the learning rate per step: the spec's small one keeps that below the tolerance, while a different
    computation or different random draws miss it by orders of magnitude in the first iteration.
    The ``pairing.*`` diagnostics are differences of two nearly equal mean log-ratios, so the same
    rounding is a larger share of them: they get an absolute tolerance of 1e-3.
    """
    assert [sorted(i) for i in a] == [sorted(i) for i in b]
    for number, (first, second) in enumerate(zip(a, b, strict=True), 1):
        for name in first:
            atol = 1e-3 if name.startswith("pairing.") else 1e-5
            torch.testing.assert_close(first[name], second[name], rtol=1e-4, atol=atol, msg=f"{name}, step {number}")


@pytest.fixture(scope="module")
def plain(builtin_host: PluginHost, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Tensor]]:
    return trained(builtin_host, tmp_path_factory.mktemp("plain"))[1]


def test_channels_last_lays_out_weights_and_batches_in_nhwc_and_trains_the_same(builtin_host, tmp_path, plain):
    trainer, weights = trained(builtin_host, tmp_path, channels_last=True)
    convolution = trainer.model.y_branch.trunk[1].weight
    assert convolution.is_contiguous(memory_format=torch.channels_last) and not convolution.is_contiguous()
    assert_same_values(plain, weights)


def test_channels_last_changes_only_4d_tensors_of_a_batch():
    batch = as_sample({"x": torch.randn(2, 3, 4, 4), "y": torch.randn(2, 5)}, torch.device("cpu"))
    moved = batch_to_channels_last(batch)
    assert moved.x.is_contiguous(memory_format=torch.channels_last) and not moved.x.is_contiguous()
    assert moved.y is batch.y
    torch.testing.assert_close(moved.x, batch.x)


def test_reusing_encoder_features_trains_the_same_as_encoding_every_use(builtin_host, tmp_path, plain):
    assert_same_values(plain, trained(builtin_host, tmp_path, reuse=False)[1])


@pytest.mark.slow  # two training runs with several generator steps; CI runs the slow tests too
def test_each_generator_update_encodes_afresh_when_there_are_several(builtin_host, tmp_path):
    """Features kept from before an update would be stale (and their graph freed): each update gets a new scope."""
    two = {"generator_steps": 2, "lr": 1.0e-2}  # a large step: stale features would change the numbers visibly
    reused = trained(builtin_host, tmp_path / "reused", **two)[1]
    assert_same_values(reused, trained(builtin_host, tmp_path / "fresh", reuse=False, **two)[1])


def test_compile_targets_the_outermost_sequentials_and_keeps_parameter_names(builtin_host):
    spec = build_run_spec_model(builtin_host.registry).model_validate(IMAGE_SPEC)
    model = assemble(spec, builtin_host.registry).model
    names = list(model.state_dict())
    # per branch: trunk and decoder; the joint encoder: its two trunks
    assert compile_sequentials(model) == 6
    assert list(model.state_dict()) == names


@pytest.mark.slow
def test_compiled_networks_train_the_same(builtin_host, tmp_path, plain):
    assert_same_values(plain, trained(builtin_host, tmp_path, compile=True)[1])


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx2 {extra}
bogomips\t: 4890.81
"""


@pytest.mark.parametrize(("extra", "native"), [("", False), ("avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True)])
def test_native_bf16_on_a_cpu_follows_its_flags(tmp_path, monkeypatch, extra, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    assert ("avx2" in cpu_flags(cpuinfo)) and cpu_flags(tmp_path / "absent") == frozenset()
    monkeypatch.setattr(speedups, "cpu_flags", lambda: cpu_flags(cpuinfo))
    assert has_native_bf16(torch.device("cpu")) is native


SETTING = {"precision": st.sampled_from(["auto", "fp32", "bf16"])} | {
    name: st.sampled_from(["auto", True, False]) for name in ("channels_last", "compile")
}


@given(settings=st.fixed_dictionaries(SETTING), native=st.booleans(), device=st.sampled_from(["cpu", "cuda"]))
def test_auto_decides_by_device_and_native_bf16_and_explicit_settings_win(settings, native, device):
    train = TrainSpec(**settings)
    original = speedups.has_native_bf16
    speedups.has_native_bf16 = lambda _: native  # hypothesis reruns the body: no function-scoped fixture
    try:
        execution = resolve_execution(train, torch.device(device))
    finally:
        speedups.has_native_bf16 = original
    auto_precision = "bf16" if native and device == "cuda" else "fp32"  # CPUs: fp32 everywhere, one model per spec
    assert execution.precision == (auto_precision if settings["precision"] == "auto" else settings["precision"])
    auto_layout = device == "cuda" and execution.precision == "bf16"
    assert execution.channels_last is (
        auto_layout if settings["channels_last"] == "auto" else settings["channels_last"]
    )
    assert execution.compile is (device == "cuda" if settings["compile"] == "auto" else settings["compile"])
    assert execution.native_bf16 is native
