"""The execution switches of ``train``: channels-last memory and torch.compile, applied to any networks.

Neither changes what is computed: channels-last only reorders how 4-D tensors are laid out in
memory, and ``nn.Module.compile`` compiles a module's forward in place (parameter names, and so
checkpoints, stay as they are). They are generic over plugins: channels-last converts every 4-D
parameter and every 4-D batch tensor, compile targets each outermost ``nn.Sequential`` (the trunks,
decoders and head bodies of the built-in modalities and critics), where the arithmetic is, and leaves
custom wiring around them (parametrisations, concatenations) eager.
"""

from __future__ import annotations

import torch
from torch import nn

from wynerkit.sample import Sample


def to_channels_last(network: nn.Module) -> None:
    """Put the network's 4-D parameters and buffers in channels-last memory, in place (same Parameters)."""
    network.to(memory_format=torch.channels_last)


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
