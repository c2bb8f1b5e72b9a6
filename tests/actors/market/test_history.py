"""TickHistory: packed ticks, read from another thread while the feed writes."""

from __future__ import annotations

import sys
import threading

import pytest

from actors.market.history import ROW_BYTES, TickHistory
from actors.messages import MarketTick, Side


def tick(n: int) -> MarketTick:
    return MarketTick(pair="BTC/USDT", ts_ms=1_000 + n, price=100.0 + n, bid=99.0 + n,
                      ask=101.0 + n, amount=n / 8, side=(None, Side.BUY, Side.SELL)[n % 3])


def test_a_tick_takes_one_row_of_bytes_and_no_object():
    """41 bytes a tick, however many: the history holds no ticks for the collector."""
    history = TickHistory("BTC/USDT", 100)
    for n in range(250):
        history.append(tick(n))

    assert ROW_BYTES == 41
    assert len(history._buf) == 100 * ROW_BYTES
    assert len(history) == 100
    assert history.ticks() == tuple(tick(n) for n in range(150, 250))
    assert history.ticks(2) == (tick(248), tick(249))
    assert history.ticks(0) == ()


def test_a_reader_on_another_thread_never_sees_a_torn_or_rotated_ring():
    """While the feed thread writes 60,000 ticks into a ring of 50, every read is a run of
    consecutive ticks ending at the newest written before it: no half-written row, no start
    moved under the reader."""
    history = TickHistory("BTC/USDT", 50)
    done = threading.Event()
    ticks = [tick(n) for n in range(60_000)]

    def write() -> None:
        for t in ticks:
            history.append(t)
        done.set()

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as CPython will
    writer = threading.Thread(target=write)
    reads = 0
    try:
        writer.start()
        while not done.is_set():
            seen = history.ticks()
            if seen:
                first = seen[0].ts_ms - 1_000
                assert seen == tuple(ticks[first:first + len(seen)])
                reads += 1
        writer.join()
    finally:
        sys.setswitchinterval(switch)
    assert reads > 10


def test_an_empty_ring_is_refused():
    with pytest.raises(ValueError, match="at least one tick"):
        TickHistory("BTC/USDT", 0)
