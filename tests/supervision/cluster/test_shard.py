"""A shard's pykka system without Ray: what goes up, what comes down, and its lease."""

from __future__ import annotations

import pykka
import pytest

from actors.messages import STATE, SUPERVISOR, MarketTick, Ping, RequestBook, StrategySpec
from supervision.cluster import ShardRuntime, skip_seen
from supervision.cluster.wire import Downlink, ShardSpec
from supervision.config import build_config
from supervision.tree import SetPaused
from tests.helpers import eventually
from tests.supervision.cluster.support import NotOnANode

PAIRS = ("BTC/USDT", "ETH/USDT")


@pytest.fixture
def runtime():
    config = build_config({"cluster": {"address": "auto", "shard_timeout_s": 0.5}},
                          {"pairs": ",".join(PAIRS), "state_db": ":memory:"})
    spec = ShardSpec(index=0, generation=3, config=config, start_ms=1_700_000_000_000,
                     specs=tuple((p, config.strategy) for p in PAIRS))
    shard = ShardRuntime(spec, wake=lambda: None)
    yield shard
    shard.stop()


def test_a_started_shard_asks_the_head_for_each_pairs_book(runtime):
    """Its supervisor's book requests go up, in one batch of the shard's generation."""
    uplink = runtime.uplink()

    assert (uplink.shard, uplink.generation) == (0, 3)
    assert [m for to, m in uplink.messages if to == STATE and isinstance(m, RequestBook)] == [
        RequestBook(pair=p) for p in PAIRS]
    assert uplink.report is not None
    assert [p.pair for p in uplink.report.pairs] == list(PAIRS)


def test_downlink_batches_are_delivered_in_their_order_whatever_order_they_arrive_in(
        runtime):
    """Batches could arrive out of order (two head threads): seq puts them back."""
    runtime.apply(Downlink(seq=1, messages=((SUPERVISOR, SetPaused(pair="BTC/USDT",
                                                                   paused=False)),)))
    runtime.apply(Downlink(seq=0, messages=((SUPERVISOR, SetPaused(pair="BTC/USDT",
                                                                   paused=True)),)))
    runtime.router.services[SUPERVISOR].ask(Ping(), timeout=5)

    assert runtime.router.pairs["BTC/USDT"].paused is False


def test_a_shard_that_hears_nothing_from_the_head_stops_trading(runtime):
    """No batch from the head for shard_timeout_s (a partition): fenced, nothing more goes
    up. Sending up does not keep the lease: only hearing from the head does."""
    runtime.apply(Downlink(seq=0, messages=()))  # the head's first batch starts the lease
    for _ in range(3):
        runtime.uplink()
    eventually(lambda: runtime.state == "fenced" or runtime.state == "stopped", timeout=5,
               message="the shard to stop trading")
    eventually(lambda: all(h.state == "stopped" for h in runtime.router.pairs.values()),
               timeout=5, message="its pairs to stop")

    runtime.outbox.put(STATE, RequestBook(pair="BTC/USDT"))
    assert runtime.uplink().messages == ()


def tick(pair, ts_ms):
    return MarketTick(pair=pair, ts_ms=ts_ms, price=1.0, bid=1.0, ask=1.0)


def test_a_shard_placed_again_skips_the_ticks_its_pairs_already_traded():
    ticks = [tick("A/USDT", 1), tick("B/USDT", 1), tick("A/USDT", 2), tick("B/USDT", 2)]

    kept = list(skip_seen(iter(ticks), {"A/USDT": 1}))

    assert kept == ticks[1:]


class _NeverBuilds(NotOnANode):
    def __init__(self, **params):
        raise ModuleNotFoundError("No module named 'my_models' (on this node)")


def test_a_shard_whose_pairs_cannot_start_leaves_no_actor_running():
    """pykka's threads are not daemons: one left running keeps a Ray worker alive for good."""
    config = build_config({"cluster": {"address": "auto"}},
                          {"pairs": ",".join(PAIRS), "state_db": ":memory:"})
    spec = StrategySpec(path=f"{__name__}:_NeverBuilds")
    before = len(pykka.ActorRegistry.get_all())

    with pytest.raises(Exception, match="my_models"):
        ShardRuntime(ShardSpec(index=0, generation=0, config=config, start_ms=1_700_000_000_000,
                               specs=tuple((p, spec) for p in PAIRS)), wake=lambda: None)

    eventually(lambda: len(pykka.ActorRegistry.get_all()) == before, timeout=5,
               message="the shard's actors to stop")
