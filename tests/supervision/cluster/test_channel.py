"""The head <-> shard connection without Ray, on 127.0.0.1: batches both ways and in order,
the key, heartbeats, and a broken connection reported at once."""

from __future__ import annotations

import queue
import threading
import types
from multiprocessing import AuthenticationError

import pytest

from actors.messages import STATE, RequestBook
from supervision.cluster.channel import ShardChannel, connect, new_key
from supervision.cluster.head import ShardLink
from supervision.cluster.wire import Downlink, Uplink

pytestmark = pytest.mark.timeout(30)


class Shard:
    """A shard's end whose runtime is two queues: what came down, what goes up."""

    def __init__(self, heartbeat_s: float = 5.0) -> None:
        self.key = new_key()
        self.down: queue.SimpleQueue[Downlink] = queue.SimpleQueue()
        self.up: queue.SimpleQueue[tuple[tuple[str, object], ...]] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.channel = ShardChannel("127.0.0.1", self.key, apply=self.down.put,
                                    uplink=self.uplink, ready=self.ready,
                                    heartbeat_s=heartbeat_s, name="test-shard")

    def uplink(self) -> Uplink:
        messages: tuple[tuple[str, object], ...] = ()
        if not self.up.empty():
            messages = self.up.get()
        return Uplink(shard=0, generation=0, messages=messages)

    def say(self, *messages: tuple[str, object]) -> None:
        self.up.put(messages)
        self.ready.set()


@pytest.fixture
def shard():
    made = Shard()
    yield made
    made.channel.close()


def test_batches_go_down_in_order_and_up_when_the_shard_has_something(shard):
    conn = connect("127.0.0.1", shard.channel.port, shard.key)
    for seq in range(3):
        conn.send(Downlink(seq=seq, messages=()))
    shard.say((STATE, RequestBook(pair="BTC/USDT")))

    assert [shard.down.get(timeout=5).seq for _ in range(3)] == [0, 1, 2]
    assert conn.poll(5)
    assert conn.recv().messages == ((STATE, RequestBook(pair="BTC/USDT")),)
    conn.close()


def test_a_client_without_the_key_is_refused_and_the_head_still_connects(shard):
    with pytest.raises(AuthenticationError):
        connect("127.0.0.1", shard.channel.port, new_key())

    conn = connect("127.0.0.1", shard.channel.port, shard.key)
    conn.send(Downlink(seq=0, messages=()))
    assert shard.down.get(timeout=5).seq == 0
    conn.close()


def test_a_shard_with_nothing_to_say_still_sends_a_heartbeat():
    idle = Shard(heartbeat_s=0.05)
    try:
        conn = connect("127.0.0.1", idle.channel.port, idle.key)
        beats = 0
        while beats < 3 and conn.poll(5):
            assert conn.recv().messages == ()
            beats += 1
        assert beats == 3
        conn.close()
    finally:
        idle.channel.close()


class FakeHead:
    """What a ``ShardLink`` calls on its head."""

    def __init__(self) -> None:
        self.cluster = types.SimpleNamespace(shard_timeout_s=1.0)
        self.losses: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.batches: queue.SimpleQueue[Uplink] = queue.SimpleQueue()

    def lost(self, index: int, generation: int, reason: str) -> None:
        self.losses.put(f"{index}/{generation}: {reason}")

    def dispatch(self, uplink: Uplink) -> None:
        self.batches.put(uplink)

    def release_marks(self, index: int) -> None:
        pass

    def tick_pairs(self) -> frozenset[str]:
        return frozenset()


def test_the_head_s_link_carries_both_ways_and_reports_a_broken_connection_at_once(shard):
    head = FakeHead()
    link = ShardLink(head, 0, 7, ("127.0.0.1", shard.channel.port), shard.key).start()
    link.send(STATE, RequestBook(pair="ETH/USDT"))
    shard.say((STATE, RequestBook(pair="BTC/USDT")))

    came_down = [shard.down.get(timeout=5) for _ in range(1)]
    assert came_down[0].messages == ((STATE, RequestBook(pair="ETH/USDT")),)
    assert head.batches.get(timeout=5).messages == ((STATE, RequestBook(pair="BTC/USDT")),)

    shard.channel.close()  # the shard's process is gone

    assert head.losses.get(timeout=5).startswith("0/7: connection lost")
    link.close()


def test_a_shard_that_cannot_be_reached_is_lost_with_the_reason(shard):
    head = FakeHead()
    port = shard.channel.port
    shard.channel.close()

    ShardLink(head, 2, 1, ("127.0.0.1", port), shard.key).start()

    assert head.losses.get(timeout=5).startswith(f"2/1: cannot connect to 127.0.0.1:{port}")
