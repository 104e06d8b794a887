"""Sample: the immutable batch of (x, y, z, u, v)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from wynerkit.sample import Sample


@given(batch=st.integers(1, 33), seed=st.integers(0, 2**31 - 1))
def test_shuffling_z_permutes_z_only(batch, seed):
    s = Sample(x=torch.randn(batch, 3), y=torch.randn(batch, 2), z=torch.arange(batch).float()[:, None])
    g = torch.Generator().manual_seed(seed)
    shuffled = s.shuffled("z", g)
    assert torch.equal(shuffled.x, s.x) and torch.equal(shuffled.y, s.y)
    assert sorted(shuffled.z.flatten().tolist()) == sorted(s.z.flatten().tolist())
    again = s.shuffled("z", torch.Generator().manual_seed(seed))
    assert torch.equal(again.z, shuffled.z)


def test_mismatched_batch_sizes_are_refused():
    with pytest.raises(ValueError, match="disagree on the batch size"):
        Sample(x=torch.zeros(3, 1), z=torch.zeros(4, 1))


def test_require_select_detach_and_replace():
    x = torch.randn(4, 2, requires_grad=True)
    s = Sample(x=x * 2, z=torch.randn(4, 1))
    with pytest.raises(ValueError, match=r"lacks variable\(s\) \['u'\]; it has \['x', 'z'\]"):
        s.require("x", "u")
    assert s.select("z").x is None and s.select("z").batch_size == 4
    assert not s.detach().x.requires_grad and s.x.requires_grad
    assert s.with_(x=None).x is None and s.x is not None
    with pytest.raises(ValueError, match="empty Sample"):
        _ = Sample().batch_size
