"""Message helpers that the hot path uses instead of ``attrs.evolve``."""

from __future__ import annotations

import attrs

from actors.messages import MarketTick, Side


def test_a_stamped_tick_is_the_same_tick_with_its_arrival_time() -> None:
    """``stamped`` rebuilds the tick field by field: every field but ``recv_ns`` is kept."""
    tick = MarketTick(pair="ETH/USDT", ts_ms=1_700_000_000_123, price=3_000.5, bid=3_000.25,
                      ask=3_000.75, amount=0.42, side=Side.SELL, recv_ns=7)

    stamped = tick.stamped(99)

    assert stamped == attrs.evolve(tick, recv_ns=99)


def test_market_ticks_have_exactly_the_fields_stamped_copies() -> None:
    """A new field must be copied by ``MarketTick.stamped`` too, or it would silently fall
    back to its default on every tick the feed delivers."""
    assert [f.name for f in attrs.fields(MarketTick)] == [
        "pair", "ts_ms", "price", "bid", "ask", "amount", "side", "recv_ns"]
