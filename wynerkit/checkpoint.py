"""Checkpoints: safetensors for every tensor, JSON for the rest, one directory per checkpoint.

``checkpoints/step-00001000/`` holds ``model``, ``ema``, ``critic`` weights, both optimisers' state
(tensors in safetensors, hyper-parameters in JSON), the RNG states and ``state.json`` (step, data
position, best validation value). Nothing is pickled, so loading one never executes code.
A checkpoint is written into a hidden temporary directory and renamed into place, so a crash leaves
either the whole checkpoint or none of it; older ones are pruned only after the new one exists.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from wynerkit.atomic import write_json_atomic
from wynerkit.errors import UsageError

PREFIX = "step-"
BEST = "best"


def save_tensors(tensors: Mapping[str, Tensor], path: Path) -> None:
    """A safetensors file of independent, contiguous CPU copies (safetensors refuses shared storage)."""
    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}, str(path))


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """An optimiser's state as flat tensors ``state.<param>.<key>`` plus its JSON-able param groups."""
    state = optimizer.state_dict()
    tensors = {f"state.{index}.{key}": value for index, entry in state["state"].items() for key, value in entry.items()}
    return tensors, {"param_groups": state["param_groups"]}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, Tensor], meta: Mapping[str, Any]) -> None:
    state: dict[int, dict[str, Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def load_weights(module: nn.Module, path: Path, what: str) -> None:
    """Load a state dict, or fail naming every tensor that does not fit this architecture."""
    tensors = load_file(str(path))
    own = module.state_dict()
    problems = [f"missing {k}" for k in own if k not in tensors]
    problems += [f"unexpected {k}" for k in tensors if k not in own]
    problems += [
        f"{k}: checkpoint {list(tensors[k].shape)} vs model {list(v.shape)}"
        for k, v in own.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise UsageError(
            f"{path}: the {what} weights do not match this spec's architecture ({shown}); "
            "resume with the spec the checkpoint was trained with"
        )
    module.load_state_dict(tensors)


def write_checkpoint(
    directory: Path,
    name: str,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    extra_tensors: Mapping[str, Tensor],
    state: Mapping[str, Any],
) -> Path:
    """Write one checkpoint directory atomically (temporary directory, then rename) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for key, module in modules.items():
        save_tensors(module.state_dict(), tmp / f"{key}.safetensors")
    optimizer_meta = {}
    for key, optimizer in optimizers.items():
        tensors, optimizer_meta[key] = optimizer_tensors(optimizer)
        save_tensors(tensors, tmp / f"optimizer-{key}.safetensors")
    save_tensors(extra_tensors, tmp / "extra.safetensors")
    write_json_atomic(tmp / "state.json", {**state, "optimizers": optimizer_meta})
    for path in tmp.iterdir():
        _fsync(path)
    return _install(tmp, directory, name)


def link_checkpoint(source: Path, name: str) -> Path:
    """Make ``name`` (e.g. ``best``) a copy of a written checkpoint by hard links: no second write."""
    directory = source.parent
    tmp = directory / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for path in source.iterdir():
        os.link(path, tmp / path.name)
    return _install(tmp, directory, name)


def _install(tmp: Path, directory: Path, name: str) -> Path:
    """Rename a complete temporary checkpoint directory into place, replacing an older one of that name."""
    final = directory / name
    if final.exists():  # replacing "best": move the old one aside first, then drop it
        old = directory / f".old-{name}-{os.getpid()}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    _fsync(directory)
    return final


def read_checkpoint(
    path: Path, modules: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer]
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Load weights and optimiser states in place; return the extra tensors and the JSON state."""
    if not (path / "state.json").is_file():
        raise UsageError(f"{path}: not a checkpoint (no state.json); pick a directory under checkpoints/")
    state = json.loads((path / "state.json").read_text())
    for key, module in modules.items():
        load_weights(module, path / f"{key}.safetensors", key)
    for key, optimizer in optimizers.items():
        load_optimizer(optimizer, load_file(str(path / f"optimizer-{key}.safetensors")), state["optimizers"][key])
    return load_file(str(path / "extra.safetensors")), state


def step_checkpoints(directory: Path) -> list[Path]:
    """The numbered checkpoints, oldest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def prune(directory: Path, keep_last: int) -> None:
    """Delete all but the ``keep_last`` newest numbered checkpoints (``best`` is separate)."""
    for old in step_checkpoints(directory)[:-keep_last]:
        shutil.rmtree(old)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
