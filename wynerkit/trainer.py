"""The training loop: alternating critic and generator updates, EMA, metrics, checkpoints, resume.

One iteration takes one minibatch and samples each distribution the objective needs once. The
critic trains ``critic_steps`` times on detached copies of those samples; then the generator takes
``generator_steps`` updates with the critic frozen (the first reuses the samples and their graph,
which the critic update left valid). Everything random draws from seeded generators whose states
go into every checkpoint, so a resumed run continues exactly where the killed one stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wynerkit.assembly import RunParts
from wynerkit.checkpoint import BEST, link_checkpoint, prune, read_checkpoint, step_checkpoints, write_checkpoint
from wynerkit.data_loading import as_sample, epoch_batches, fetch, in_order
from wynerkit.ema import EMA
from wynerkit.errors import UsageError, WynerkitError
from wynerkit.metrics_log import MetricsLog
from wynerkit.progress import StepProgress
from wynerkit.step import TrainingStep

CHECKPOINTS = "checkpoints"


class TrainingDiverged(WynerkitError):
    """A loss became NaN or infinite; nothing after the last good checkpoint was written."""


@dataclass
class Position:
    """How far training got: iterations done, and where in which epoch."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


@dataclass
class Window:
    """Sums of logged values since the last log line (kept on the device: no sync per step)."""

    sums: dict[str, Tensor] = field(default_factory=dict)
    count: int = 0

    def add(self, values: dict[str, Tensor]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
        self.count += 1

    def flush(self) -> dict[str, float]:
        names = list(self.sums)
        means = (torch.stack([self.sums[n] for n in names]) / max(self.count, 1)).tolist() if names else []
        self.sums, self.count = {}, 0
        return dict(zip(names, means, strict=True))


def planned_steps(epochs: int | None, max_steps: int | None, steps_per_epoch: int) -> int:
    """The iteration budget: whichever of ``epochs`` and ``max_steps`` ends first."""
    budgets = [b for b in (epochs * steps_per_epoch if epochs else None, max_steps) if b is not None]
    return min(budgets)


class Trainer:
    def __init__(self, parts: RunParts, run_dir: Path) -> None:
        self.parts = parts
        self.run_dir = run_dir
        spec, self.train_spec = parts.spec, parts.spec.train
        tr = self.train_spec
        self.model, self.critic, self.objective = parts.model, parts.estimator, parts.objective
        adam = {"betas": tr.betas, "amsgrad": tr.amsgrad}
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "model": torch.optim.Adam(self.model.parameters(), lr=tr.lr, **adam)
        }
        if self.critic is not None:
            self.optimizers["critic"] = torch.optim.Adam(self.critic.parameters(), lr=tr.critic_lr or tr.lr, **adam)
        self.ema = EMA(self.model, tr.ema)
        self.generator = torch.Generator(parts.device).manual_seed(spec.seed)
        self.train_split = parts.data.split("train")
        self.steps_per_epoch = len(epoch_batches(self.train_split, tr.batch_size, spec.seed, 0))
        if self.steps_per_epoch == 0:
            raise UsageError(
                f"train.batch_size: {tr.batch_size} is more than the {len(self.train_split)} training pairs; lower it"
            )
        self.total = planned_steps(tr.epochs, tr.max_steps, self.steps_per_epoch)
        self.position = Position()
        self.window = Window()
        self.best: dict[str, Any] = {}
        self.log = MetricsLog(run_dir / "metrics.jsonl")

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        tr, pos = self.train_spec, self.position
        started = time.perf_counter()
        with StepProgress(self.total, pos.step) as progress:
            while pos.step < self.total:
                batches = epoch_batches(self.train_split, tr.batch_size, self.parts.spec.seed, pos.epoch)
                while pos.batch < len(batches) and pos.step < self.total:
                    batch = as_sample(fetch(self.train_split, batches[pos.batch]), self.parts.device)
                    self.window.add(self.iteration(batch, pos.step + 1))
                    pos.step, pos.batch = pos.step + 1, pos.batch + 1
                    progress.advance(pos.step)
                    if pos.step % tr.log_every == 0 or pos.step == self.total:
                        record = {"step": pos.step, "epoch": pos.epoch, **self.window.flush()}
                        self.log.write(record)
                        progress.report(pos.step, _short(record))
                    if pos.step % tr.checkpoint.every == 0 or pos.step == self.total:
                        self.checkpoint()
                if pos.batch >= len(batches):
                    pos.epoch, pos.batch = pos.epoch + 1, 0
        return {"steps": pos.step, "epochs": pos.step / self.steps_per_epoch, "seconds": time.perf_counter() - started}

    def iteration(self, batch: Any, number: int) -> dict[str, Tensor]:
        """One critic phase and one generator phase on one minibatch; returns detached values to log."""
        tr = self.train_spec
        self.model.train()
        step = TrainingStep(self.model, self.critic, batch, self.generator)
        logged: dict[str, Tensor] = {}
        if self.critic is not None and self.objective.critic_terms:
            self.critic.train()
            for _ in range(tr.critic_steps):
                step.begin_critic_phase()
                with self._precision():
                    total, losses, accuracies = self.objective.critic_loss(step)
                _check_finite(losses, number, "critic loss of term")
                self._update("critic", total)
            logged["loss.critic"] = total.detach()
            logged.update({f"critic.{k}": v.detach() for k, v in losses.items()})
            logged.update({f"accuracy.{k}": v for k, v in accuracies.items()})
            self.critic.requires_grad_(False)
        try:
            for g in range(tr.generator_steps):
                if g:  # the model changed: draw fresh samples
                    step = TrainingStep(self.model, self.critic, batch, self.generator)
                step.begin_generator_phase()
                with self._precision():
                    total, values = self.objective.generator_loss(step)
                _check_finite(values, number, "generator loss of term")
                self._update("model", total)
                self.ema.update(self.model)
        finally:
            if self.critic is not None:
                self.critic.requires_grad_(True)
        logged["loss.generator"] = total.detach()
        logged.update({f"term.{k}": v.detach() for k, v in values.items()})
        return logged

    def _precision(self) -> torch.autocast:
        """bfloat16 autocast around the forward passes when ``train.precision`` is bf16 (backward runs outside)."""
        enabled = self.train_spec.precision == "bf16"
        return torch.autocast(self.parts.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _update(self, which: str, loss: Tensor) -> None:
        optimizer = self.optimizers[which]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.train_spec.grad_clip is not None:
            network = self.model if which == "model" else self.critic
            nn.utils.clip_grad_norm_(network.parameters(), self.train_spec.grad_clip)
        optimizer.step()

    # -- validation and checkpoints ------------------------------------------------------------------
    @torch.no_grad()
    def validation_loss(self) -> float:
        """Cross-reconstruction error of the EMA model on validation pairs: R_x2y + R_y2x, lower is better.

        Deterministic (no prior draws) and run under a forked RNG, so it never changes training.
        """
        model, spec = self.ema.model, self.parts.spec
        split = self.parts.data.split("valid")
        limit = spec.train.checkpoint.valid_batches * spec.train.batch_size
        total, count = 0.0, 0
        with torch.random.fork_rng(devices=_cuda_devices(self.parts.device)):
            for indices in in_order(split, spec.train.batch_size, limit):
                x, y = as_sample(fetch(split, indices), self.parts.device).require("x", "y")
                zx, zy = model.encode_z(x=x), model.encode_z(y=y)
                y_hat = model.decode(zx, v=model.encode_v(zx, y)).y
                x_hat = model.decode(zy, u=model.encode_u(zy, x)).x
                loss = model.y_modality.reconstruction_loss(y_hat, y) + model.x_modality.reconstruction_loss(x_hat, x)
                total += float(loss.sum())
                count += len(indices)
        return total / max(count, 1)

    def checkpoint(self) -> None:
        value = self.validation_loss()
        step = self.position.step
        self.log.write({"step": step, "valid.loss": value})
        directory = self.run_dir / CHECKPOINTS
        improved = math.isfinite(value) and ("valid.loss" not in self.best or value < self.best["valid.loss"])
        if improved:
            self.best = {"valid.loss": value, "step": step}
        written = write_checkpoint(directory, f"step-{step:08d}", *self._checkpoint_payload(value))
        if improved:
            link_checkpoint(written, BEST)
        prune(directory, self.train_spec.checkpoint.keep_last)

    def _modules(self) -> dict[str, nn.Module]:
        """The networks a checkpoint holds, by file name."""
        modules: dict[str, nn.Module] = {"model": self.model, "ema": self.ema.model}
        if self.critic is not None:
            modules["critic"] = self.critic
        return modules

    def _checkpoint_payload(self, value: float) -> tuple[dict, dict, dict, dict]:
        extra = {"rng.cpu": torch.get_rng_state(), "rng.generator": self.generator.get_state()}
        if self.parts.device.type == "cuda":
            extra["rng.cuda"] = torch.cuda.get_rng_state(self.parts.device)
        extra.update({f"window.{k}": v for k, v in self.window.sums.items()})
        state = {
            "position": vars(self.position).copy(),
            "window_count": self.window.count,
            "ema_updates": self.ema.updates,
            "valid.loss": value,
            "best": self.best,
            "total_steps": self.total,
        }
        return self._modules(), self.optimizers, extra, state

    def resume(self) -> int:
        """Load the newest checkpoint of the run directory; return its step (0 when there is none)."""
        found = step_checkpoints(self.run_dir / CHECKPOINTS)
        if not found:
            self.log.truncate_after(0)
            return 0
        extra, state = read_checkpoint(found[-1], self._modules(), self.optimizers)
        torch.set_rng_state(extra["rng.cpu"])
        self.generator.set_state(extra["rng.generator"])
        if "rng.cuda" in extra and self.parts.device.type == "cuda":
            torch.cuda.set_rng_state(extra["rng.cuda"], self.parts.device)
        self.position = Position(**state["position"])
        self.window = Window(
            {k.removeprefix("window."): v.to(self.parts.device) for k, v in extra.items() if k.startswith("window.")},
            state["window_count"],
        )
        self.ema.updates = state["ema_updates"]
        self.best = state["best"]
        self.log.truncate_after(self.position.step)
        return self.position.step


def _check_finite(values: dict[str, Tensor], step: int, what: str) -> None:
    """Stop on a NaN or infinite loss, naming the term and step (one device sync per phase)."""
    if not values or bool(torch.isfinite(torch.stack([v.detach() for v in values.values()])).all()):
        return
    bad = next(name for name, v in values.items() if not torch.isfinite(v).all())
    raise TrainingDiverged(
        f"step {step}: {what} {bad} is {float(values[bad].detach())}; training stopped before updating with it, "
        "the checkpoints written so far are intact (lower train.lr, set train.grad_clip, or check the data)"
    )


def _cuda_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


def _short(record: dict[str, Any]) -> str:
    keys = ("loss.generator", "loss.critic")
    return " ".join(f"{k.split('.')[1]}={record[k]:.4g}" for k in keys if k in record) + f" epoch={record['epoch']}"
