"""Checkpoints: safetensors for every tensor, JSON for the rest, one directory per checkpoint.

``checkpoints/step-00001000/`` holds ``model``, ``ema``, ``critic`` weights, both optimisers' state
(tensors in safetensors, hyper-parameters in JSON), the RNG states and ``state.json`` (step, data
position, best validation value, and the SHA-256 of every other file of the checkpoint). Nothing is
pickled, so loading one never executes code; every file is checked against its digest before use,
so a damaged checkpoint is named and refused instead of loading silently.
A checkpoint is written into a hidden temporary directory and renamed into place, so a crash leaves
either the whole checkpoint or none of it; older ones are pruned only after the new one exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from wynerkit.atomic import write_json_atomic
from wynerkit.errors import UsageError

PREFIX = "step-"
BEST = "best"
STATE = "state.json"
DIGESTS = "files"
"""The key of ``state.json`` that maps each other file of the checkpoint to its SHA-256."""
TEMPORARY = ".tmp-"
REPLACED = ".old-"
"""Name prefixes of a checkpoint being written, and of one being replaced (both hidden)."""


class CheckpointDamaged(UsageError):
    """A checkpoint file is missing, unreadable, or not what was written (its digest differs)."""

    def __init__(self, file: Path, why: str) -> None:
        self.file, self.why = file, why
        super().__init__(
            f"{file}: {why}; this checkpoint cannot be used: pick another one (--checkpoint best or latest), "
            "or resume the run, which falls back to the newest intact checkpoint"
        )


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
    """Load a safetensors state dict from ``path`` (not digest-checked: a file outside a checkpoint)."""
    fit_weights(module, read_tensors(path), path, what)


def fit_weights(module: nn.Module, tensors: Mapping[str, Tensor], path: Path, what: str) -> None:
    """Load a state dict, or fail naming every tensor that does not fit this architecture."""
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


def read_tensors(path: Path, digest: str | None = None) -> dict[str, Tensor]:
    """The tensors of a safetensors file, checked against its SHA-256 first when ``digest`` is given."""
    try:
        if digest is not None and _sha256(path) != digest:
            raise CheckpointDamaged(path, "damaged: its SHA-256 differs from the one recorded when it was written")
        return load_file(str(path))
    except OSError as exc:
        raise CheckpointDamaged(path, f"cannot be read ({exc.strerror or exc})") from None
    except SafetensorError as exc:  # e.g. a pickle renamed .safetensors: refused, never unpickled
        raise CheckpointDamaged(path, f"not a readable safetensors file ({exc})") from None


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint directory with its parsed ``state.json``; files are digest-checked as they are read."""

    path: Path
    state: dict[str, Any]

    @classmethod
    def open(cls, path: Path) -> Checkpoint:
        file = path / STATE
        if not file.is_file():
            raise UsageError(f"{path}: not a checkpoint (no {STATE}); pick a directory under checkpoints/")
        try:
            state = json.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CheckpointDamaged(file, f"cannot be read ({exc.strerror or exc})") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointDamaged(file, f"damaged: not valid JSON ({exc})") from None
        if not isinstance(state, dict) or not isinstance(state.get("position"), dict):
            raise CheckpointDamaged(file, "damaged: no training position in it")
        return cls(path, state)

    @property
    def verified(self) -> bool:
        """False for checkpoints written before digests were recorded: they load unchecked."""
        return DIGESTS in self.state

    def tensors(self, name: str) -> dict[str, Tensor]:
        """The tensors of one file of the checkpoint, refused when the file differs from what was written."""
        if not self.verified:
            return read_tensors(self.path / name)
        digest = self.state[DIGESTS].get(name)
        if digest is None:
            raise CheckpointDamaged(self.path / name, f"not listed in {STATE}, so it cannot be checked")
        return read_tensors(self.path / name, digest)

    @property
    def step(self) -> int:
        return int(self.state["position"]["step"])


def write_checkpoint(
    directory: Path,
    name: str,
    modules: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    extra_tensors: Mapping[str, Tensor],
    state: Mapping[str, Any],
) -> Path:
    """Write one checkpoint directory atomically (temporary directory, then rename) and return it."""
    tmp = _fresh_temporary(directory, name)
    for key, module in modules.items():
        save_tensors(module.state_dict(), tmp / f"{key}.safetensors")
    optimizer_meta = {}
    for key, optimizer in optimizers.items():
        tensors, optimizer_meta[key] = optimizer_tensors(optimizer)
        save_tensors(tensors, tmp / f"optimizer-{key}.safetensors")
    save_tensors(extra_tensors, tmp / "extra.safetensors")
    digests = {path.name: _sha256(path) for path in sorted(tmp.iterdir())}
    write_json_atomic(tmp / STATE, {**state, "optimizers": optimizer_meta, DIGESTS: digests})
    for path in tmp.iterdir():
        _fsync(path)
    return _install(tmp, directory, name)


def copy_checkpoint(source: Path, name: str) -> Path:
    """Make ``name`` (e.g. ``best``) a copy of a written checkpoint: its own files, so damage to one
    (or a later write of either) never reaches the other."""
    directory = source.parent
    tmp = _fresh_temporary(directory, name)
    for path in source.iterdir():
        shutil.copyfile(path, tmp / path.name)
        _fsync(tmp / path.name)
    return _install(tmp, directory, name)


def _fresh_temporary(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{TEMPORARY}{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def _install(tmp: Path, directory: Path, name: str) -> Path:
    """Rename a complete temporary checkpoint directory into place, replacing an older one of that name."""
    final = directory / name
    if final.exists():  # replacing "best": move the old one aside first, then drop it
        old = directory / f"{REPLACED}{name}-{os.getpid()}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    _fsync(directory)
    return final


def remove_temporaries(directory: Path) -> list[Path]:
    """Clear what an interrupted write left behind; return what was removed.

    A half-written ``.tmp-*`` directory is deleted. A ``.old-<name>-*`` one is the previous ``<name>``
    moved aside while being replaced: it is deleted when ``<name>`` exists, and put back when the
    kill came before the replacement was renamed in.
    """
    if not directory.is_dir():
        return []
    removed = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(REPLACED):
            original = directory / path.name.removeprefix(REPLACED).rsplit("-", 1)[0]
            if not original.exists():
                path.rename(original)
                continue
        elif not path.name.startswith(TEMPORARY):
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        removed.append(path)
    return removed


def read_checkpoint(
    path: Path, modules: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer]
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Load weights and optimiser states in place; return the extra tensors and the JSON state.

    Every file is read and checked before anything is loaded, so a damaged checkpoint
    (``CheckpointDamaged``) leaves the modules and optimisers as they were.
    """
    checkpoint = Checkpoint.open(path)
    weights = {key: checkpoint.tensors(f"{key}.safetensors") for key in modules}
    optimizer_states = {key: checkpoint.tensors(f"optimizer-{key}.safetensors") for key in optimizers}
    extra = checkpoint.tensors("extra.safetensors")
    for key, module in modules.items():
        fit_weights(module, weights[key], path / f"{key}.safetensors", key)
    for key, optimizer in optimizers.items():
        load_optimizer(optimizer, optimizer_states[key], checkpoint.state["optimizers"][key])
    return extra, checkpoint.state


def step_name(step: int) -> str:
    """The directory name of the checkpoint written at ``step``: ``step-`` and eight digits."""
    return f"{PREFIX}{step:08d}"


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
