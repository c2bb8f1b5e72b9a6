"""Pair handles: which ticks a paced feed sheds, and the doorbell of an idle pair."""

from __future__ import annotations

import threading

import pykka
import pytest

from actors.messages import MarketTick
from actors.router import SHED_AFTER_MS, TICKS_READY, PairHandle

MS = 1_000_000


def tick(recv_ms: float) -> MarketTick:
    return MarketTick(pair="BTC/USDT", ts_ms=1 + int(recv_ms), price=100.0, bid=99.9, ask=100.0,
                      recv_ns=int(recv_ms * MS))


class Recorder(pykka.ThreadingActor):
    def __init__(self, seen: list[object], rung: threading.Event) -> None:
        super().__init__()
        self.seen = seen
        self.rung = rung

    def on_receive(self, message: object) -> None:
        self.seen.append(message)
        self.rung.set()


@pytest.fixture
def attached() -> tuple[PairHandle, list[object], threading.Event]:
    seen: list[object] = []
    rung = threading.Event()
    ref = Recorder.start(seen, rung)
    handle = PairHandle("BTC/USDT", max_inflight=5)
    handle.attach(ref, 1, handle.new_inbox())
    yield handle, seen, rung
    ref.stop()


def test_a_paced_tick_is_shed_once_the_oldest_waiting_one_is_too_old(attached) -> None:
    """Shedding feeds: a tick behind one that entered SHED_AFTER_MS earlier is not queued,
    one just inside that is; nothing is shed once the pair has taken what waited."""
    handle, _, _ = attached
    stop = threading.Event()

    assert handle.deliver(tick(0.0), False, stop)
    assert handle.deliver(tick(SHED_AFTER_MS - 1), False, stop)
    assert not handle.deliver(tick(SHED_AFTER_MS), False, stop)
    handle.inbox.pop()
    handle.inbox.pop()
    assert handle.deliver(tick(SHED_AFTER_MS + 1), False, stop)
    assert len(handle.inbox) == 1


def test_a_paced_tick_is_shed_at_a_full_inbox_and_a_replay_waits_for_none_of_this(
        attached) -> None:
    """Credits still bound a shedding feed; a blocking replay (no recv stamps) never sheds
    by age, however old its waiting ticks look."""
    handle, _, _ = attached
    stop = threading.Event()
    for _ in range(5):
        assert handle.deliver(tick(0.0), False, stop)
    assert not handle.deliver(tick(1.0), False, stop)

    replay = PairHandle("ETH/USDT", max_inflight=5)
    unstamped = tick(0.0)
    for _ in range(5):
        assert replay.deliver(unstamped, True, stop)
    assert len(replay.inbox) == 5


def test_the_first_tick_into_an_empty_inbox_rings_the_actor_once(attached) -> None:
    """An idle pair hears TICKS_READY for the tick that finds its inbox empty, not for the
    ones that queue behind it."""
    handle, seen, rung = attached
    stop = threading.Event()

    handle.deliver(tick(0.0), False, stop)
    handle.deliver(tick(1.0), False, stop)
    assert rung.wait(5)
    assert handle.ref is not None
    handle.ref.stop()  # handles whatever was rung before it

    assert seen == [TICKS_READY]


def test_latency_keeps_the_last_samples_in_order_after_its_ring_wraps(monkeypatch) -> None:
    """The recent samples are the newest RECENT_SAMPLES, oldest first, before and after the
    ring wraps; the histogram counts every one."""
    import actors.router as router

    monkeypatch.setattr(router, "RECENT_SAMPLES", 4)
    latency = router.TickLatency()
    for i in range(3):
        latency.record(100 + i, i)
    assert latency.recent == [(100, 0), (101, 1), (102, 2)]

    for i in range(3, 10):
        latency.record(100 + i, i)

    assert latency.recent == [(106, 6), (107, 7), (108, 8), (109, 9)]
    assert sum(latency.counts) == 10
    assert latency.percentiles(109, (0.5,), window_ns=3) == (7 / 1e6,)


def test_latency_window_matches_the_samples_at_every_fill_of_its_ring(monkeypatch) -> None:
    """``since`` finds the window by bisection in the two parts of the ring; it gives what
    filtering every recent sample gives, before the ring fills, when full, and after wraps."""
    import actors.router as router

    monkeypatch.setattr(router, "RECENT_SAMPLES", 5)
    latency = router.TickLatency()
    for i in range(17):
        latency.record(1000 + 10 * i, i)
        for since in range(990, 1000 + 10 * i + 12, 3):
            expected = [lat for at, lat in latency.recent if at >= since]
            assert latency.since(since) == expected, (i, since)


def test_latency_percentiles_are_the_nearest_ranks_of_the_window_at_every_fill(
        monkeypatch) -> None:
    """numpy selects them from the ring's views; a sorted list of the window is the
    reference, before the ring fills, when full, and after it wraps."""
    import math
    import random

    import actors.router as router

    monkeypatch.setattr(router, "RECENT_SAMPLES", 7)
    rng = random.Random(5)
    latency = router.TickLatency()
    for i in range(30):
        latency.record(1000 + 10 * i, rng.randint(1, 10_000_000))
        now = 1000 + 10 * i
        for window in (1, 25, 45, 1000):
            values = sorted(lat for at, lat in latency.recent if at >= now - window)
            quantiles = (0.5, 0.9, 0.99, 1.0)
            expected = tuple(values[min(len(values), max(1, math.ceil(len(values) * q))) - 1]
                             / 1e6 for q in quantiles) if values else None
            assert latency.percentiles(now, quantiles, window_ns=window) == expected, (i, window)
