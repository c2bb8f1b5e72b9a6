"""The live feed's core: what ccxt returns is validated, de-duplicated and timed, threadless."""

from __future__ import annotations

import math
import random

import pytest

from actors.market.live_feed_core import (
    BAD_TIMESTAMP,
    CROSSED_BOOK,
    DUPLICATE,
    MALFORMED,
    MISSING_FIELD,
    NON_POSITIVE,
    NOT_A_NUMBER,
    TIME_BACKWARDS,
    Backoff,
    FeedCore,
    Links,
    candle_ticks,
    model_quotes,
)
from actors.messages import Side

PAIR = "BTC/USDT"
WALL = 1_700_000_000_000


def trade(i: int, price: float = 60_000.0, ts: int | None = None, **extra) -> dict:
    record = {"id": str(i), "symbol": PAIR, "timestamp": WALL + i if ts is None else ts,
              "price": price, "amount": 0.01, "side": "buy"}
    record.update(extra)
    return record


def core(stale_after_s: float = 10.0) -> FeedCore:
    return FeedCore({PAIR: 0.01, "ETH/USDT": 0.01}, stale_after_s, now=0.0)


def test_a_valid_trade_becomes_a_tick_with_quotes_modelled_on_the_tick_grid():
    """Without a quote stream, a taker buy trades at the ask, one tick above the bid."""
    out = core().trades(PAIR, [trade(1)], now=1.0, wall_ms=WALL + 10)

    (tick,) = out.ticks
    assert (tick.pair, tick.ts_ms, tick.price, tick.amount) == (PAIR, WALL + 1, 60_000.0, 0.01)
    assert (tick.bid, tick.ask, tick.side) == (59_999.99, 60_000.0, Side.BUY)
    assert tick.is_sane()


@pytest.mark.parametrize(("change", "reason"), [
    ({"price": None}, MISSING_FIELD),
    ({"timestamp": None}, MISSING_FIELD),
    ({"amount": None}, MISSING_FIELD),
    ({"price": "60000"}, NOT_A_NUMBER),
    ({"price": True}, NOT_A_NUMBER),
    ({"price": math.nan}, NOT_A_NUMBER),
    ({"price": math.inf}, NOT_A_NUMBER),
    ({"price": 0.0}, NON_POSITIVE),
    ({"price": -1.0}, NON_POSITIVE),
    ({"amount": -0.5}, NON_POSITIVE),
    ({"timestamp": 0}, NON_POSITIVE),
    ({"timestamp": WALL + 3_600_000}, BAD_TIMESTAMP),
    ({"symbol": "ETH/USDT"}, MALFORMED),
])
def test_a_bad_field_drops_the_trade_and_counts_the_reason(change, reason):
    """Every field is checked; a bad one drops the record under its reason, never a tick."""
    feed = core()

    out = feed.trades(PAIR, [trade(1, **change)], now=1.0, wall_ms=WALL)

    assert out.ticks == ()
    assert feed.dropped(PAIR)[reason] == 1
    assert sum(feed.dropped().values()) == 1


def test_records_that_are_not_mappings_are_malformed():
    """A list of garbage (strings, None) is counted, not crashed on."""
    feed = core()

    out = feed.trades(PAIR, ["{not json", None, 42], now=1.0, wall_ms=WALL)

    assert out.ticks == ()
    assert feed.dropped(PAIR)[MALFORMED] == 3


def test_trades_resent_after_a_reconnect_are_dropped_as_duplicates():
    """An exchange that replays its last trades on resubscribe yields each trade once."""
    feed = core()
    first = feed.trades(PAIR, [trade(1), trade(2), trade(3)], now=1.0, wall_ms=WALL + 10)

    again = feed.trades(PAIR, [trade(2), trade(3), trade(4)], now=2.0, wall_ms=WALL + 10)

    assert [t.ts_ms for t in first.ticks + again.ticks] == [WALL + 1, WALL + 2, WALL + 3,
                                                             WALL + 4]
    assert feed.dropped(PAIR)[DUPLICATE] == 2


def test_a_trade_older_than_the_last_tick_is_dropped_and_an_equal_time_is_kept():
    """Trades share milliseconds; time going backwards is refused."""
    feed = core()
    feed.trades(PAIR, [trade(1, ts=WALL + 5)], now=1.0, wall_ms=WALL + 10)

    out = feed.trades(PAIR, [trade(2, ts=WALL + 5), trade(3, ts=WALL + 4)], now=1.0,
                      wall_ms=WALL + 10)

    assert [t.ts_ms for t in out.ticks] == [WALL + 5]
    assert feed.dropped(PAIR)[TIME_BACKWARDS] == 1


def test_a_fresh_quote_gives_trades_its_bid_and_ask_widened_to_the_trade_price():
    """A streamed bid/ask is used while fresh; a trade outside it widens it."""
    feed = core()
    feed.quote(PAIR, {"symbol": PAIR, "bid": 59_990.0, "ask": 60_010.0}, now=1.0)

    inside = feed.trades(PAIR, [trade(1, price=60_000.0)], now=2.0, wall_ms=WALL + 10).ticks[0]
    outside = feed.trades(PAIR, [trade(2, price=60_020.0)], now=2.0, wall_ms=WALL + 10).ticks[0]
    late = feed.trades(PAIR, [trade(3, price=60_000.0)], now=20.0, wall_ms=WALL + 10).ticks[0]

    assert (inside.bid, inside.ask) == (59_990.0, 60_010.0)
    assert (outside.bid, outside.ask) == (59_990.0, 60_020.0)
    assert (late.bid, late.ask) == (59_999.99, 60_000.0)  # the quote is too old: modelled


def test_a_crossed_or_empty_quote_is_dropped_and_not_used():
    """bid > ask, or a quote of Nones, is counted and ignored."""
    feed = core()

    feed.quote(PAIR, {"symbol": PAIR, "bid": 60_010.0, "ask": 59_990.0}, now=1.0)
    feed.quote(PAIR, {"symbol": PAIR, "bid": None, "ask": None}, now=1.0)
    tick = feed.trades(PAIR, [trade(1)], now=2.0, wall_ms=WALL + 10).ticks[0]

    assert feed.dropped(PAIR)[CROSSED_BOOK] == 1
    assert feed.dropped(PAIR)[MISSING_FIELD] == 1
    assert (tick.bid, tick.ask) == (59_999.99, 60_000.0)


def test_a_ticker_full_of_none_is_dropped_and_never_becomes_a_tick():
    """ccxt's answer to a 200 reply that is not JSON: every value None."""
    feed = core()
    garbage = dict.fromkeys(("symbol", "timestamp", "last", "close", "bid", "ask"))

    out = feed.ticker(PAIR, garbage, now=1.0, wall_ms=WALL)

    assert out.ticks == ()
    assert feed.dropped(PAIR)[MISSING_FIELD] == 1


def test_a_polled_ticker_becomes_a_tick_at_its_last_price_with_its_book():
    """REST: last, bid and ask of the ticker; the local clock when it has no timestamp."""
    feed = core()

    out = feed.ticker(PAIR, {"symbol": PAIR, "timestamp": None, "last": 60_000.0,
                             "bid": 59_999.0, "ask": 60_001.0}, now=1.0, wall_ms=WALL)

    (tick,) = out.ticks
    assert (tick.ts_ms, tick.price, tick.bid, tick.ask) == (WALL, 60_000.0, 59_999.0, 60_001.0)


def test_a_pair_goes_stale_after_silence_and_fresh_on_valid_data_once_each():
    """No data for stale_after_s: one stale notice; the next valid record: one fresh."""
    feed = core(stale_after_s=5.0)

    assert feed.check_stale(4.9) == []
    went = feed.check_stale(5.0)
    assert feed.check_stale(6.0) == []  # said once
    garbage = feed.trades(PAIR, [trade(1, price=None)], now=7.0, wall_ms=WALL + 10)
    back = feed.trades(PAIR, [trade(2)], now=8.0, wall_ms=WALL + 10)

    assert {(n.pair, n.stale) for n in went} == {(PAIR, True), ("ETH/USDT", True)}
    assert feed.stale_pairs == frozenset({"ETH/USDT"})
    assert garbage.fresh is None  # malformed data is not data
    assert back.fresh is not None
    assert (back.fresh.pair, back.fresh.stale, back.fresh.age_s) == (PAIR, False, 8.0)


def test_a_backlog_of_old_trades_is_delivered_but_does_not_end_staleness():
    """Trades stamped long ago (a lagging feed) become ticks; only a recent one is fresh."""
    feed = core(stale_after_s=5.0)
    feed.check_stale(5.0)
    now_wall = WALL + 60_000

    backlog = feed.trades(PAIR, [trade(1), trade(2)], now=6.0, wall_ms=now_wall)
    still_stale = PAIR in feed.stale_pairs
    recent = feed.trades(PAIR, [trade(3, ts=now_wall - 1_000)], now=7.0, wall_ms=now_wall)

    assert len(backlog.ticks) == 2
    assert backlog.fresh is None
    assert still_stale
    assert recent.fresh is not None
    assert PAIR not in feed.stale_pairs


def test_the_stale_clock_starts_when_the_feed_starts():
    """Time spent loading markets before the feed runs does not count as silence."""
    feed = core(stale_after_s=5.0)
    feed.reset_clock(100.0)

    assert feed.check_stale(104.0) == []
    assert len(feed.check_stale(105.0)) == 2


def test_a_quote_alone_keeps_a_pair_fresh():
    """Bid/ask updates are market data even when nobody trades."""
    feed = core(stale_after_s=5.0)
    feed.check_stale(5.0)

    notice = feed.quote(PAIR, {"symbol": PAIR, "bid": 1.0, "ask": 2.0}, now=6.0)

    assert notice is not None
    assert not notice.stale


def test_backoff_doubles_with_jitter_between_the_bounds_and_resets():
    """Seeded: each delay is in the upper half of its step, never below initial or above max."""
    backoff = Backoff(0.5, 8.0, random.Random(1))

    delays = [backoff.next_delay() for _ in range(8)]
    backoff.reset()

    steps = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    for delay, step in zip(delays, steps, strict=True):
        assert max(0.5, step / 2) <= delay <= step
    assert backoff.next_delay() == pytest.approx(0.5)
    assert Backoff(0.5, 8.0, random.Random(1)).next_delay() == delays[0]


def test_an_outage_over_many_streams_and_retries_is_one_down_and_one_up():
    """Two streams fail and retry repeatedly: one change to log each way; the first delivery
    after the outage ends it (the streams share the exchange's connections)."""
    links = Links(["trades:A", "trades:B"], 0.1, 1.0, random.Random(0))

    changes = [links.failed("trades:A", "closed", 1.0)[1],
               links.failed("trades:B", "closed", 1.0)[1],
               links.failed("trades:A", "refused", 2.0)[1]]
    up = links.succeeded("trades:A", 3.0)
    after = links.succeeded("trades:B", 4.0)

    assert [c.kind if c else None for c in changes] == ["down", None, None]
    assert up is not None
    assert (up.kind, up.down_s, up.failures) == ("up", 2.0, 3)
    assert after is None
    assert (links.disconnects, links.reconnects) == (1, 1)


def test_dropping_a_failed_stream_ends_its_outage():
    """A stream given up on (no quote stream) does not hold the outage open."""
    links = Links(["quotes:A"], 0.1, 1.0, random.Random(0))
    links.failed("quotes:A", "not supported", 1.0)

    change = links.drop_stream("quotes:A", 2.0)

    assert change is not None
    assert change.kind == "up"
    assert links.down == frozenset()


def test_candles_become_four_ticks_each_and_bad_candles_are_skipped():
    """Open, low, high, close for a rising candle; high below low is no candle."""
    rows = [[WALL, 100.0, 110.0, 95.0, 105.0, 1.0], [WALL + 60_000, 100.0, 90.0, 95.0, 99.0, 1],
            [WALL + 120_000, None, 1, 1, 1, 1]]

    ticks = candle_ticks(PAIR, rows, 0.01, 60_000)

    assert [t.price for t in ticks] == [100.0, 95.0, 110.0, 105.0]
    assert [t.ts_ms - WALL for t in ticks] == [0, 15_000, 30_000, 45_000]
    assert all(t.is_sane() for t in ticks)


def test_modelled_quotes_stay_positive_for_a_tick_too_large_for_the_price():
    """A 0.01 tick on a 0.0005 price shrinks to a grid near 1e-4 of the price."""
    bid, ask = model_quotes(0.0005, 0.01, None)

    assert 0 < bid < 0.0005 < ask
