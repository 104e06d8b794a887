"""``evenly_spaced`` never repeats or drops items, and the test queries of ``wynerkit retrieve`` are distinct."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

from wynerkit.data.batching import stack_pairs
from wynerkit.data.loading import evenly_spaced
from wynerkit_plugins.evaluators import retrieve_command
from wynerkit_plugins.evaluators.retrieval_items import Pairing


@given(size=st.integers(0, 5000), n=st.integers(0, 7000))
def test_evenly_spaced_gives_min_n_size_distinct_indices_spread_evenly(size, n):
    chosen = evenly_spaced(range(size), n)
    count = min(n, size)
    assert len(chosen) == count
    assert chosen == sorted(set(chosen))  # distinct and in order
    assert all(0 <= i < size for i in chosen)
    if count:
        assert chosen[0] == 0
        gaps = {b - a for a, b in zip(chosen, [*chosen[1:], size], strict=True)}
        assert gaps <= {size // count, -(-size // count)}  # every gap, the last one included, within one of size/n


class NumberedSplit(torch.utils.data.Dataset):
    """Item i: x = y = [i], labelled i % 10."""

    def __init__(self, size: int) -> None:
        self.values = torch.arange(size, dtype=torch.float32)[:, None]

    def __len__(self) -> int:
        return len(self.values)

    def __getitems__(self, indices: list[int]) -> dict:
        i = torch.as_tensor(indices)
        return stack_pairs(self.values[i], self.values[i], i % 10, i % 10)


def test_more_test_queries_than_the_split_holds_ranks_each_item_once():
    split = NumberedSplit(1000)
    queries = retrieve_command.test_queries(
        split, Pairing.of(split), 1500
    )  # before: 1000 rows but only 667 distinct queries
    assert len(queries.names) == 1000 and len(set(queries.names)) == 1000
    assert queries.items[:, 0].tolist() == [float(i) for i in range(1000)]
    assert queries.labels.tolist() == [i % 10 for i in range(1000)]
    assert queries.match.tolist() == list(range(1000))
