"""Data-parallel training on torch.distributed, as ``torchrun`` launches it; a no-op for one process.

``torchrun --nproc_per_node=N -m wynerkit run spec.yaml`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set; ``Cluster.from_env``
joins them into one process group (NCCL on GPUs, gloo on CPUs). Every rank builds the same model
from the same seed, and rank 0's weights and buffers are broadcast once so they start identical.

Each global batch of ``train.batch_size`` items (the single-process batch) is cut into one strided
shard per rank, ``batch[rank::world]``: over an epoch this is exactly what
``DistributedSampler(shuffle=False)`` deals out of the epoch's order, and the shards of one step
together are the single-process batch. After every backward pass the gradients of the network
being updated are averaged over the ranks (one all-reduce of a flat buffer per network), so every
rank applies the same Adam step and parameters stay identical; that is the arithmetic of
``DistributedDataParallel``. Its wrapper is not used because wynerkit's models are driven through
their samplers (``variational``, ``joint``, ``x_to_y``, ...), several per backward pass, not through
one ``forward`` call, and DDP's reducer hooks into ``forward``. Module buffers (batch-norm running
statistics) follow rank 0's after every update, as DDP's ``broadcast_buffers`` does.

Random draws (prior samples, shuffles, instance noise) use per-rank streams: rank 0 keeps the
single-process seed, rank r > 0 a seed derived from (seed, r), so the ranks' shards get independent
noise. Logged values are averaged over the ranks before they are written or used to pick the best
checkpoint. Rank 0 alone writes files; the others wait at barriers around checkpoints.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from wynerkit.errors import UsageError

RANK_SEED_STRIDE = 1_000_003
"""Rank r > 0 seeds its random streams with ``seed + r * RANK_SEED_STRIDE`` (rank 0: ``seed``)."""
TIMEOUT = timedelta(minutes=60)
"""How long a rank waits for the others at a collective (rank 0 may be writing a large checkpoint)."""


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun (or another launcher) started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass(frozen=True)
class Cluster:
    """This process's place among the training processes; ``Cluster()`` is a single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend_device: str = "cpu"
    """Where collectives' tensors must live: cuda for NCCL, cpu for gloo."""

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run directory's files."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device_choice: str) -> Cluster:
        """Join torchrun's process group (NCCL on CUDA, else gloo); a single process without torchrun."""
        if not launched_by_torchrun():
            return cls()
        rank, world, local = (int(os.environ[key]) for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        cuda = device_choice != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            _import_what_would_pin_the_group()
            dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
        return cls(rank, world, local, "cuda" if cuda else "cpu")

    def seed(self, seed: int) -> int:
        """The seed of this rank's random streams."""
        return seed + self.rank * RANK_SEED_STRIDE

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise UsageError(
                f"train.batch_size: {batch_size} does not split evenly over {self.world} processes; "
                f"use a multiple of {self.world} (it is the global batch, shared out among the processes)"
            )

    def shard(self, indices: list[int]) -> list[int]:
        """This rank's part of a global batch (strided, as DistributedSampler deals an epoch's order)."""
        return indices[self.rank :: self.world] if self.active else indices

    # -- collectives (no-ops for one process) -----------------------------------------------------------
    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def mean(self, values: Tensor) -> Tensor:
        """The element-wise mean of ``values`` over the ranks."""
        if not self.active:
            return values
        total = values.detach().clone()
        dist.all_reduce(total)
        return total / self.world

    def average_gradients(self, module: nn.Module) -> None:
        """Replace every gradient of ``module`` by its mean over the ranks (one flat all-reduce)."""
        if not self.active:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def broadcast_parameters(self, module: nn.Module) -> None:
        """Make every rank's parameters and buffers rank 0's."""
        if self.active:
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Make every rank's buffers (e.g. batch-norm running statistics) rank 0's."""
        if self.active:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    def gather(self, state: Tensor) -> list[Tensor]:
        """Every rank's ``state`` (a 1-d tensor of one length on all ranks), in rank order, where it was."""
        if not self.active:
            return [state]
        local = state.to(self.backend_device)
        out = [torch.empty_like(local) for _ in range(self.world)]
        dist.all_gather(out, local)
        return [t.to(state.device) for t in out]

    def share_text(self, text: str) -> str:
        """Rank 0's ``text`` on every rank (sent as UTF-8 bytes in tensors, never pickled)."""
        if not self.active:
            return text
        data = torch.tensor(list(text.encode()) if self.is_main else [], dtype=torch.uint8)
        length = torch.tensor([len(data)], dtype=torch.long, device=self.backend_device)
        dist.broadcast(length, src=0)
        buffer = (
            data.to(self.backend_device)
            if self.is_main
            else torch.empty(int(length), dtype=torch.uint8, device=self.backend_device)
        )
        dist.broadcast(buffer, src=0)
        return bytes(buffer.cpu().tolist()).decode()

    def close(self) -> None:
        """Destroy the process group; its backend's threads (gloo's workers and TCP loop) end here, not at exit."""
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def _import_what_would_pin_the_group() -> None:
    """Import, before the process group exists, the torch module that takes it as a default argument.

    ``torch.distributed.nn.functional`` declares ``group=group.WORLD`` defaults, evaluated at import.
    Imported later (the first optimizer imports ``torch._dynamo``, which imports it), it would hold the
    default group forever: ``destroy_process_group`` could not free gloo's threads, and they would be
    torn down with the interpreter, which can abort a rank at exit (``terminate called without an
    active exception``, SIGABRT). Imported first, its defaults are None.
    """
    importlib.import_module("torch.distributed.nn.functional")
