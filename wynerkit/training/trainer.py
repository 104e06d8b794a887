"""The training loop: alternating critic and generator updates, EMA, metrics, checkpoints, resume.

One iteration takes one minibatch and samples each distribution the objective needs once. The
critic trains ``critic_steps`` times on detached copies of those samples; then the generator takes
``generator_steps`` updates with the critic frozen (the first reuses the samples and their graph,
which the critic update left valid). Everything random draws from seeded generators whose states
go into every checkpoint, so a resumed run continues exactly where the killed one stopped.

The loop, validation, checkpointing and resume stay in one class: they read and write the same state
(position, log window, generator, EMA, optimisers), which a checkpoint saves and a resume restores.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wynerkit.data.loading import as_sample, epoch_batches, fetch, in_order
from wynerkit.errors import UsageError
from wynerkit.interfaces import EpochSplit, FeatureReuse
from wynerkit.progress import StepProgress
from wynerkit.rundir.checkpoint import (
    BEST,
    DIGESTS,
    Checkpoint,
    CheckpointDamaged,
    copy_checkpoint,
    prune,
    read_checkpoint,
    remove_temporaries,
    step_checkpoints,
    step_name,
    write_checkpoint,
)
from wynerkit.rundir.metrics_log import MetricsLog
from wynerkit.rundir.paths import RunDir
from wynerkit.training.assembly import RunParts
from wynerkit.training.distributed import Cluster
from wynerkit.training.divergence import check_finite
from wynerkit.training.ema import EMA
from wynerkit.training.speedups import batch_to_channels_last, compile_sequentials, resolve_execution
from wynerkit.training.step import TrainingStep
from wynerkit.training.window import Position, Window, window_counts


def planned_steps(epochs: int | None, max_steps: int | None, steps_per_epoch: int) -> int:
    """The iteration budget: whichever of ``epochs`` and ``max_steps`` ends first."""
    budgets = [b for b in (epochs * steps_per_epoch if epochs else None, max_steps) if b is not None]
    return min(budgets)


class Trainer:
    def __init__(self, parts: RunParts, run_dir: Path, cluster: Cluster | None = None) -> None:
        self.parts = parts
        self.paths = RunDir(run_dir)
        self.cluster = cluster = cluster or Cluster()
        spec, self.train_spec = parts.spec, parts.spec.train
        tr = self.train_spec
        self.model, self.critic, self.objective = parts.model, parts.estimator, parts.objective
        cluster.check_batch(tr.batch_size)
        if cluster.active and parts.device.type == "cuda":  # batch statistics over the global batch, as one GPU
            nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        for network in (self.model, self.critic):
            if network is not None:
                cluster.broadcast_parameters(network)
        if cluster.rank:  # weights were built from the run seed; this rank's draws get their own stream
            torch.manual_seed(cluster.seed(spec.seed))
        self.execution = execution = resolve_execution(tr, parts.device)
        networks = [n for n in (self.model, self.critic) if n is not None]
        if execution.channels_last:  # in place: the Parameters stay the same objects
            for network in networks:
                network.to(memory_format=torch.channels_last)
        adam = {"betas": tr.betas, "amsgrad": tr.amsgrad}
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "model": torch.optim.Adam(self.model.parameters(), lr=tr.lr, **adam)
        }
        if self.critic is not None:
            self.optimizers["critic"] = torch.optim.Adam(self.critic.parameters(), lr=tr.critic_lr or tr.lr, **adam)
        self.ema = EMA(self.model, tr.ema)
        if execution.compile:  # after the EMA's copy: evaluation runs the EMA model eagerly
            for network in networks:
                compile_sequentials(network)
        self.generator = torch.Generator(parts.device).manual_seed(cluster.seed(spec.seed))
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
        self.log = MetricsLog(self.paths.metrics)

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        tr, pos = self.train_spec, self.position
        started = time.perf_counter()
        main = self.cluster.is_main
        with StepProgress(self.total, pos.step, quiet=not main) as progress:
            while pos.step < self.total:
                if isinstance(self.train_split, EpochSplit):  # e.g. Sketchy redraws each sketch's photo per epoch
                    self.train_split.set_epoch(pos.epoch)
                batches = epoch_batches(self.train_split, tr.batch_size, self.parts.spec.seed, pos.epoch)
                while pos.batch < len(batches) and pos.step < self.total:
                    indices = self.cluster.shard(batches[pos.batch])
                    batch = as_sample(fetch(self.train_split, indices), self.parts.device)
                    self.window.add(self.iteration(batch, pos.step + 1, logs=self._logs(pos.step + 1)))
                    pos.step, pos.batch = pos.step + 1, pos.batch + 1
                    progress.advance(pos.step)
                    if pos.step % tr.log_every == 0 or pos.step == self.total:
                        record = {"step": pos.step, "epoch": pos.epoch, **self.window.flush(self.cluster)}
                        if main:
                            self.log.write(record)
                        progress.report(pos.step, _short(record))
                    if pos.step % tr.checkpoint.every == 0 or pos.step == self.total:
                        self.checkpoint()
                if pos.batch >= len(batches):
                    pos.epoch, pos.batch = pos.epoch + 1, 0
        return {"steps": pos.step, "epochs": pos.step / self.steps_per_epoch, "seconds": time.perf_counter() - started}

    def _logs(self, number: int) -> bool:
        """Whether iteration ``number`` ends a log window (its values are written after it)."""
        return number % self.train_spec.log_every == 0 or number == self.total

    def iteration(self, batch: Any, number: int, logs: bool = True) -> dict[str, Tensor]:
        """One critic phase and one generator phase on one minibatch; returns detached values to log.

        ``logs``: the iteration ends a log window, so the per-window diagnostics (``pairing.*``) are measured.
        """
        tr = self.train_spec
        self.model.train()
        if self.execution.channels_last:
            batch = batch_to_channels_last(batch)
        logged: dict[str, Tensor] = {}
        try:
            with self._reusing_features():
                step = TrainingStep(self.model, self.critic, batch, self.generator)
                if self.critic is not None and self.objective.critic_terms:
                    logged.update(self._critic_phase(step, number))
                    if logs:  # two extra critic passes: measured once per log line, not every step
                        logged.update(self._pairing(step))
                    self.critic.requires_grad_(False)
                total, values = self._generator_update(step, number)
            for _ in range(1, tr.generator_steps):  # the model changed: fresh samples, fresh features
                with self._reusing_features():
                    step = TrainingStep(self.model, self.critic, batch, self.generator)
                    total, values = self._generator_update(step, number)
        finally:
            if self.critic is not None:
                self.critic.requires_grad_(True)
        logged["loss.generator"] = total.detach()
        logged.update({f"term.{k}": v.detach() for k, v in values.items()})
        return logged

    def _critic_phase(self, step: TrainingStep, number: int) -> dict[str, Tensor]:
        """``critic_steps`` critic updates on the step's samples; returns the values to log."""
        self.critic.train()
        for _ in range(self.train_spec.critic_steps):
            step.begin_critic_phase()
            with self._precision():
                total, losses, accuracies = self.objective.critic_loss(step)
            check_finite(losses, number, "critic loss of term", self.cluster)
            self._update("critic", total)
        return {
            "loss.critic": total.detach(),
            **{f"critic.{k}": v.detach() for k, v in losses.items()},
            **{f"accuracy.{k}": v for k, v in accuracies.items()},
        }

    @torch.no_grad()
    def _pairing(self, step: TrainingStep) -> dict[str, Tensor]:
        """How far each (x, y) head's output drops when y is moved to another x in real pairs: ``pairing.<head>``.

        The heads of D terms compare real pairs with generated ones; if they only judge whether x and
        y each look real, this gap stays near 0 and no term tells the model which y goes with which x.
        """
        heads = [h for h, variables in self.objective.heads.items() if "x" in variables]
        if not heads or "variational" not in step.drawn:
            return {}
        real = step.sample("variational")
        mixed = real.with_(y=real.require("y")[0].roll(1, 0))  # each x with its neighbour's y: no pair kept
        # A measurement must not change training: eval mode stops spectral norm's power iteration, and the
        # forked stream keeps the critic's instance noise from taking draws from the training one.
        self.critic.eval()
        try:
            with torch.random.fork_rng(devices=_cuda_devices(self.parts.device)), self._precision():
                features, mixed_features = self.critic.features(real), self.critic.features(mixed)
                return {
                    f"pairing.{head}": (
                        self.critic.log_ratio(head, real, features) - self.critic.log_ratio(head, mixed, mixed_features)
                    )
                    .float()
                    .mean()
                    for head in heads
                }
        finally:
            self.critic.train()

    def _generator_update(self, step: TrainingStep, number: int) -> tuple[Tensor, dict[str, Tensor]]:
        """One generator update from the step's samples (critic frozen); its total and term values."""
        step.begin_generator_phase()
        with self._precision():
            total, values = self.objective.generator_loss(step)
        check_finite(values, number, "generator loss of term", self.cluster)
        self._update("model", total)
        self.ema.update(self.model)
        return total, values

    def _reusing_features(self) -> AbstractContextManager[object]:
        """The model's scope for reusing encoder features within one set of samples, if it offers one.

        ``reusing_features()`` is an optional model capability (``FeatureReuse``; ``variational-wyner`` has it): inside,
        encoding the same data tensor twice computes its trunk features once (docs/plugins.md).
        """
        return self.model.reusing_features() if isinstance(self.model, FeatureReuse) else nullcontext()

    def _precision(self) -> torch.autocast:
        """bfloat16 autocast around the forward passes when the precision is bf16 (backward runs outside)."""
        enabled = self.execution.precision == "bf16"
        return torch.autocast(self.parts.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _update(self, which: str, loss: Tensor) -> None:
        optimizer = self.optimizers[which]
        network = self.model if which == "model" else self.critic
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.cluster.average_gradients(network)
        if self.train_spec.grad_clip is not None:
            nn.utils.clip_grad_norm_(network.parameters(), self.train_spec.grad_clip)
        optimizer.step()
        self.cluster.broadcast_buffers(network)

    # -- validation and checkpoints ------------------------------------------------------------------
    @torch.no_grad()
    def validation_loss(self) -> float:
        """The objective's validation terms (R_x2y + R_y2x) on the EMA model and validation pairs; lower is better.

        Each item's error summed over the pairs, divided by their number. Encoder noise and prior draws
        come from a generator seeded with the run's seed, under a forked RNG, so it never changes training.
        """
        model, spec, device = self.ema.model, self.parts.spec, self.parts.device
        split = self.parts.data.split("valid")
        limit = spec.train.checkpoint.valid_batches * spec.train.batch_size
        generator = torch.Generator(device).manual_seed(spec.seed)
        total, count = 0.0, 0
        with torch.random.fork_rng(devices=_cuda_devices(device)):
            for indices in in_order(split, spec.train.batch_size, limit):
                step = TrainingStep(model, None, as_sample(fetch(split, indices), device), generator)
                total += float(self.objective.validation_loss(step)) * len(indices)
                count += len(indices)
        return total / max(count, 1)

    def checkpoint(self) -> None:
        """Validate, and (rank 0) write a checkpoint; every rank takes the same decisions from shared values."""
        cluster = self.cluster
        value = float(cluster.mean(torch.tensor([self.validation_loss()], device=self.parts.device)))
        step = self.position.step
        directory = self.paths.checkpoints
        improved = math.isfinite(value) and ("valid.loss" not in self.best or value < self.best["valid.loss"])
        if improved:
            self.best = {"valid.loss": value, "step": step}
        self.window.share(cluster)
        payload = self._checkpoint_payload(value)  # a collective: every rank's random states
        cluster.barrier()
        if cluster.is_main:
            self.log.write({"step": step, "valid.loss": value})
            written = write_checkpoint(directory, step_name(step), *payload)
            if improved:
                copy_checkpoint(written, BEST)
            prune(directory, self.train_spec.checkpoint.keep_last)
        cluster.barrier()

    def _modules(self) -> dict[str, nn.Module]:
        """The networks a checkpoint holds, by file name."""
        modules: dict[str, nn.Module] = {"model": self.model, "ema": self.ema.model}
        if self.critic is not None:
            modules["critic"] = self.critic
        return modules

    def _random_states(self) -> dict[str, Tensor]:
        states = {"rng.cpu": torch.get_rng_state(), "rng.generator": self.generator.get_state()}
        if self.parts.device.type == "cuda":
            states["rng.cuda"] = torch.cuda.get_rng_state(self.parts.device)
        return states

    def _checkpoint_payload(self, value: float) -> tuple[dict, dict, dict, dict]:
        """Networks, optimisers, tensors (random states of every rank: ``rng.*`` for rank 0, ``rng.*.rank<r>``
        for the others; the shared window sums) and the JSON state."""
        extra: dict[str, Tensor] = {}
        for name, state in self._random_states().items():
            for rank, gathered in enumerate(self.cluster.gather(state)):
                extra[name if rank == 0 else f"{name}.rank{rank}"] = gathered
        extra.update({f"window.{k}": v for k, v in self.window.sums.items()})
        state = {
            "world": self.cluster.world,
            "position": vars(self.position).copy(),
            "window_counts": self.window.counts,
            "ema_updates": self.ema.updates,
            "valid.loss": value,
            "best": self.best,
            "total_steps": self.total,
        }
        return self._modules(), self.optimizers, extra, state

    def resume(self) -> int:
        """Load the newest intact checkpoint of the run directory; return its step (0 when there is none).

        Says on stderr where it resumed from. Leftovers of an interrupted checkpoint write are removed
        first; a damaged checkpoint is named and skipped for the one before it.
        """
        directory = self.paths.checkpoints
        main = self.cluster.is_main
        if main:
            for leftover in remove_temporaries(directory):
                _note(f"removed {leftover}: left by an interrupted checkpoint write")
        loaded = self._read_newest_intact(directory)
        if loaded is None:
            if main:
                self._truncate_metrics(0)
                _note(f"resume: no checkpoint in {directory} yet; starting from step 0")
            return 0
        path, extra, state = loaded
        saved_world = state.get("world", 1)
        if saved_world != self.cluster.world:
            raise UsageError(
                f"{path}: written by {saved_world} training process(es), resumed with {self.cluster.world}; "
                f"resume with the same number (e.g. torchrun --nproc_per_node={saved_world}) to continue exactly"
            )
        mine = "" if self.cluster.rank == 0 else f".rank{self.cluster.rank}"
        torch.set_rng_state(extra[f"rng.cpu{mine}"])
        self.generator.set_state(extra[f"rng.generator{mine}"])
        if f"rng.cuda{mine}" in extra and self.parts.device.type == "cuda":
            torch.cuda.set_rng_state(extra[f"rng.cuda{mine}"], self.parts.device)
        self.position = Position(**state["position"])
        sums = {k.removeprefix("window."): v.to(self.parts.device) for k, v in extra.items() if k.startswith("window.")}
        self.window = Window(sums, window_counts(state, sums))
        self.ema.updates = state["ema_updates"]
        self.best = state["best"]
        if main:
            self._truncate_metrics(self.position.step)
            self._repair_best(path)
            unverified = "" if DIGESTS in state else " (written before checkpoints recorded digests: not verified)"
            _note(f"resuming from {path} (step {self.position.step}){unverified}")
        return self.position.step

    def _read_newest_intact(self, directory: Path) -> tuple[Path, dict[str, Tensor], dict[str, Any]] | None:
        """Load the newest checkpoint whose files are all intact; None when there is no checkpoint at all."""
        found = step_checkpoints(directory)
        for path in reversed(found):
            try:
                extra, state = read_checkpoint(path, self._modules(), self.optimizers)
            except CheckpointDamaged as exc:  # nothing was loaded from it: try the one before
                if self.cluster.is_main:
                    _note(f"skipping {path}: {exc.file.name} {exc.why}; trying the checkpoint before it")
                continue
            return path, extra, state
        if found:
            raise UsageError(
                f"{directory}: no intact checkpoint to resume from (each one is damaged, see above); "
                "delete the damaged step-* directories to train the run again from step 0"
            )
        return None

    def _repair_best(self, resumed: Path) -> None:
        """Copy the checkpoint resumed from to ``best`` when it is the best so far and ``best`` is missing,
        damaged or older (a kill between writing it and copying it). A newer ``best`` is left: training
        reaches that step again and decides the same way."""
        if self.best.get("step") != self.position.step:
            return
        best = resumed.parent / BEST
        try:
            if Checkpoint.open(best).step >= self.position.step:
                return
        except UsageError:  # missing, or its state.json is damaged
            pass
        copy_checkpoint(resumed, BEST)
        _note(f"copied {resumed.name} to {best}: it is the best so far and {best} did not hold it")

    def _truncate_metrics(self, step: int) -> None:
        if self.log.truncate_after(step):
            _note(f"{self.log.path}: dropped a half-written last line (the run was killed while writing it)")


def _note(message: str) -> None:
    """A line for the person running the command (stderr: stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def _cuda_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


def _short(record: dict[str, Any]) -> str:
    keys = ("loss.generator", "loss.critic")
    return " ".join(f"{k.split('.')[1]}={record[k]:.4g}" for k in keys if k in record) + f" epoch={record['epoch']}"
