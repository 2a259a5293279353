"""How a global batch is split between ranks (pure logic; the multi-process runs are in
test_recipe_ddp.py and test_recipe_fsdp.py)."""

import random

import pytest

from worker.training.distributed import balanced_shares


def test_every_example_goes_to_exactly_one_rank_in_batch_order() -> None:
    lengths = [5, 300, 40, 40, 1000, 7, 220]
    shares = balanced_shares(lengths, 3)
    assert sorted(i for share in shares for i in share) == list(range(len(lengths)))
    assert all(share == sorted(share) for share in shares)


def test_the_longest_examples_are_spread_over_the_ranks() -> None:
    # Every other example would give rank 0 both long ones: 2,000 tokens against 20.
    shares = balanced_shares([1000, 10, 1000, 10], 2)
    assert shares == [[0, 1], [2, 3]]


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_ranks_end_within_one_example_of_each_other(world_size: int) -> None:
    rng = random.Random(world_size)
    lengths = [rng.randint(64, 2048) for _ in range(37)]
    shares = balanced_shares(lengths, world_size)
    tokens = [sum(lengths[i] for i in share) for share in shares]
    # Greedy longest-first: the busiest rank exceeds the least busy by at most one example.
    assert max(tokens) - min(tokens) <= max(lengths)
    alternate = [sum(lengths[r::world_size]) for r in range(world_size)]
    assert max(tokens) <= max(alternate)


def test_fewer_examples_than_ranks_leaves_a_rank_empty() -> None:
    assert balanced_shares([12], 2) == [[0], []]
    assert balanced_shares([], 2) == [[], []]
