"""How a run executes: ``train.precision``, ``train.channels_last`` and ``train.compile``, resolved and applied.

``resolve_execution`` decides every ``auto`` for the run's device, from what the device has (native
bf16 arithmetic or not) and what ``benchmarks/throughput.py`` measured (docs/performance.md).

The two switches change nothing that is computed: channels-last only reorders how 4-D tensors are laid out in
memory, and ``nn.Module.compile`` compiles a module's forward in place (parameter names, and so
checkpoints, stay as they are). They are generic over plugins: channels-last converts every 4-D
parameter and every 4-D batch tensor, compile targets each outermost ``nn.Sequential`` (the trunks,
decoders and head bodies of the built-in modalities and critics), where the arithmetic is, and leaves
custom wiring around them (parametrisations, concatenations) eager.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from wynerkit.sample import Sample


def batch_to_channels_last(batch: Sample) -> Sample:
    """The batch with every 4-D tensor (image batches) in channels-last memory; other tensors as they are."""
    return Sample(
        **{n: t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t for n, t in batch.items()}
    )


def compile_sequentials(network: nn.Module) -> int:
    """``compile()`` every outermost ``nn.Sequential`` inside ``network`` in place; returns how many.

    Compiling the network's own ``forward`` would miss the work of models whose samplers call
    submodules directly (``variational``, ``x_to_y``), so the sequential parts are compiled instead.
    """
    compiled = 0
    pending = [network]
    while pending:
        module = pending.pop()
        if isinstance(module, nn.Sequential):
            module.compile()
            compiled += 1
        else:
            pending.extend(module.children())
    return compiled


CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""CPU flags (Linux ``/proc/cpuinfo``) of native bf16 arithmetic; without them bf16 is emulated, 12-35x slower."""


@dataclass(frozen=True)
class Execution:
    """The run's precision and switches with every ``auto`` decided (recorded in ``summary.json``).

    ``native_bf16``: whether the device has native bf16 arithmetic, the fact ``auto`` precision follows.
    """

    precision: Literal["fp32", "bf16"]
    channels_last: bool
    compile: bool
    native_bf16: bool


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags, empty where ``/proc/cpuinfo`` does not exist (not Linux)."""
    if not cpuinfo.is_file():
        return frozenset()
    for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def has_native_bf16(device: torch.device) -> bool:
    """Whether bf16 matrix arithmetic runs natively (fast) on ``device`` rather than emulated."""
    if device.type == "cuda":  # bf16 tensor cores: Ampere (compute capability 8.0) and later
        return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu" and bool(cpu_flags() & CPU_BF16_FLAGS)


def resolve_execution(train: Any, device: torch.device) -> Execution:
    """``train``'s precision, channels_last and compile on ``device``, each ``auto`` decided.

    auto picks what is fastest among the safe choices: bf16 only on CUDA devices where it is native.
    On CPUs auto trains fp32 even where bf16 is native (AMX, avx512_bf16): the same spec must learn the
    same model on every CPU it runs on, and bf16 has been measured against fp32 on losses, not yet on
    coherence (docs/performance.md). Channels-last and compile only on CUDA (on the CPUs measured here
    neither paid for itself).
    """
    native = has_native_bf16(device)
    on_cuda = device.type == "cuda"
    precision = train.precision if train.precision != "auto" else "bf16" if native and on_cuda else "fp32"
    channels_last = train.channels_last if train.channels_last != "auto" else on_cuda and precision == "bf16"
    compile_networks = train.compile if train.compile != "auto" else on_cuda
    return Execution(precision, channels_last, compile_networks, native)
