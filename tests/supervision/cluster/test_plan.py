"""Where the pairs go: shard slices, nodes with room, shard generations (plain code)."""

from __future__ import annotations

import pytest

from supervision.cluster.plan import (
    NodeOffer,
    ShardFence,
    pick_node,
    plan_shards,
    room,
    shard_needs,
    unmet,
)

PAIRS = tuple(f"P{i:02d}/USDT" for i in range(10))


def node(node_id: str, cpus: float = 2, **extra: float) -> NodeOffer:
    return NodeOffer(node_id=node_id, host="127.0.0.1", resources={"CPU": cpus, **extra})


def test_pairs_are_split_into_contiguous_shards_that_differ_by_at_most_one():
    """10 pairs in 4 shards: 3, 3, 2, 2, every pair once, in order."""
    shards = plan_shards(PAIRS, 4)

    assert [len(s) for s in shards] == [3, 3, 2, 2]
    assert tuple(p for s in shards for p in s) == PAIRS


@pytest.mark.parametrize("shards", [0, 11])
def test_a_shard_without_pairs_is_refused(shards):
    with pytest.raises(ValueError, match="shards must be from 1 to 10"):
        plan_shards(PAIRS, shards)


def test_a_lost_shard_goes_to_the_least_loaded_node_that_has_room_not_where_it_died():
    """Node b died; a has room for 2 and hosts 2; c hosts 1 of 2: c."""
    nodes = [node("a"), node("b"), node("c")]
    need = shard_needs(1.0, 0, ())

    assert pick_node(nodes, need, avoid=["b"], load={"a": 2, "c": 1}) == "c"
    assert pick_node(nodes, need, avoid=["b"], load={"a": 2, "c": 2}) == "b"
    assert pick_node([node("a")], need, load={"a": 2}) is None


def test_room_and_unmet_read_each_resource_a_shard_needs():
    """A custom resource only one node offers; memory in MB; the best offer is named."""
    need = shard_needs(0.5, 512, (("region_eu", 1.0),))
    eu = node("eu", cpus=2, region_eu=2, memory=4 * 2**30)

    assert room(eu, need) == 2
    assert room(node("us", memory=4 * 2**30), need) == 0
    assert unmet([eu], need) == ""
    assert unmet([node("us", memory=2**30)], need) == (
        "a shard needs CPU=0.5, memory=512MB, region_eu=1, but no node of the cluster's 1 "
        "offers that (the most any node offers: CPU=2, memory=1024MB, region_eu=0)")


def test_a_batch_of_a_generation_the_head_moved_on_from_is_refused_and_counted():
    fence = ShardFence(2)

    assert fence.admits(0, 0)
    assert fence.advance(0) == 1
    assert not fence.admits(0, 0, proposals=3)
    assert fence.admits(0, 1)
    assert fence.admits(1, 0)
    assert (fence.refused_batches, fence.refused_proposals) == (1, 3)
