"""The live feed's decisions, without threads or I/O: what ccxt said, and what to do about it.

``FeedCore`` turns ccxt's unified trades and tickers into ``MarketTick`` values, after checking
every field: ccxt does not validate what an exchange sends (a 200 reply whose body is not JSON
comes back as a ticker full of ``None``), so nothing it returns is trusted. A record that is not
fit to trade on is dropped and counted by reason, and never becomes a tick. Trades are
de-duplicated by id across reconnects (an exchange may resend its last trades). The core also
keeps each pair's freshness (``stale_after_s`` without valid data makes it stale, judged on a
timer so that silence is noticed too), and each stream's connection state with its reconnect
backoff (exponential, with jitter, between ``reconnect_initial_s`` and ``reconnect_max_s``), and
says which of these changes deserve one log line, so an outage is reported once, not per retry.

Plain and single-threaded: the feed's event loop thread owns it (``actors.market.live_feed``).
Time is injected (``now`` in monotonic seconds, ``wall_ms`` for timestamps), randomness is a
seeded ``random.Random``, so tests drive it with a fake clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from actors.messages import FeedStale, MarketTick, Side
from actors.recent_ids import RecentIds

MALFORMED = "malformed"
"""Not a record at all (not a mapping), or a record of another symbol."""
MISSING_FIELD = "missing_field"
"""A required value (price, timestamp, amount, quote) is None or absent."""
NOT_A_NUMBER = "not_a_number"
"""A value that is not a finite number (a string, a bool, NaN, infinity)."""
NON_POSITIVE = "non_positive"
"""A price, quote or timestamp <= 0, or a negative amount."""
CROSSED_BOOK = "crossed_book"
"""bid > ask."""
BAD_TIMESTAMP = "bad_timestamp"
"""A timestamp too far in the future (it would block every later tick as going back)."""
TIME_BACKWARDS = "time_backwards"
"""Older than the pair's last tick."""
DUPLICATE = "duplicate"
"""A trade id seen before (resent after a reconnect): not an error, but never traded twice."""
FAILED_REQUEST = "failed_request"
"""A request whose reply ccxt could not even parse (an exception other than ccxt's own)."""
DROP_REASONS = (MALFORMED, MISSING_FIELD, NOT_A_NUMBER, NON_POSITIVE, CROSSED_BOOK,
                BAD_TIMESTAMP, TIME_BACKWARDS, DUPLICATE, FAILED_REQUEST)

MAX_FUTURE_SKEW_MS = 60_000
"""Timestamps further than this ahead of the local clock are refused."""
SEEN_IDS = 5_000
"""Trade ids remembered per pair for de-duplication (far more than a reconnect resends)."""


class _InvalidError(Exception):
    """A field failed validation; ``args[0]`` is the drop reason."""


def _number(value: Any) -> float:
    if value is None:
        raise _InvalidError(MISSING_FIELD)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _InvalidError(NOT_A_NUMBER)
    number = float(value)
    if not math.isfinite(number):
        raise _InvalidError(NOT_A_NUMBER)
    return number


def _positive(value: Any) -> float:
    number = _number(value)
    if number <= 0:
        raise _InvalidError(NON_POSITIVE)
    return number


def _timestamp(value: Any, wall_ms: int) -> int:
    number = _positive(value)
    if number > wall_ms + MAX_FUTURE_SKEW_MS:
        raise _InvalidError(BAD_TIMESTAMP)
    return int(number)


def _side(value: Any) -> Side | None:
    if value == "buy":
        return Side.BUY
    if value == "sell":
        return Side.SELL
    return None


def model_quotes(price: float, tick: float, side: Side | None) -> tuple[float, float]:
    """Bid and ask around a trade price on the market's tick grid, as the replay feed does: a
    taker buy traded at the ask (bid one tick below), a sell at the bid, an unknown side gets
    one tick either side. A tick over 1 % of the price shrinks to a power of ten near 1e-4 of
    it, so the bid stays positive."""
    if not (math.isfinite(tick) and tick > 0) or tick > price * 1e-2:
        tick = 10.0 ** round(math.log10(price * 1e-4))
    dec = max(0, -math.floor(math.log10(tick))) + 2
    if side is Side.BUY:
        return round(price - tick, dec), price
    if side is Side.SELL:
        return price, round(price + tick, dec)
    return round(price - tick, dec), round(price + tick, dec)


def candle_ticks(pair: str, candles: Iterable[Any], tick: float, bar_ms: int
                 ) -> list[MarketTick]:
    """Warm-up ticks from ccxt OHLCV rows ``[ts, open, high, low, close, volume]``, oldest
    first: open, then low and high (low first for a rising candle), then close, a quarter bar
    apart, as a candle replay makes them. Rows that are not sane candles are skipped."""
    out: list[MarketTick] = []
    quarter = bar_ms // 4
    last_ts = 0
    for row in candles:
        try:
            ts = int(_positive(row[0]))
            o, h, low, c = (_positive(v) for v in row[1:5])
        except (_InvalidError, TypeError, IndexError):
            continue
        if not (low <= min(o, c) and h >= max(o, c)) or ts < last_ts:
            continue
        middle = (low, h) if c >= o else (h, low)
        for i, price in enumerate((o, *middle, c)):
            bid, ask = model_quotes(price, tick, None)
            out.append(MarketTick(pair=pair, ts_ms=ts + i * quarter, price=price, bid=bid,
                                  ask=ask))
        last_ts = ts + 3 * quarter
    return out


@attrs.frozen(kw_only=True)
class Quote:
    bid: float
    ask: float
    at: float
    """Monotonic seconds when it arrived."""


class _Pair:
    __slots__ = ("data_at", "dropped", "last_ts", "quote", "seen", "stale", "stale_since",
                 "tick_size", "ticks")

    def __init__(self, tick_size: float, now: float) -> None:
        self.tick_size = tick_size
        self.last_ts = 0
        self.quote: Quote | None = None
        self.seen: RecentIds[Any] = RecentIds(SEEN_IDS)
        self.data_at = now
        """When valid data last arrived (or the feed started)."""
        self.stale = False
        self.stale_since = 0.0
        self.ticks = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)


@attrs.frozen(kw_only=True)
class Converted:
    """What one batch of ccxt records became."""

    ticks: tuple[MarketTick, ...]
    fresh: FeedStale | None = None
    """Set when this batch ended the pair's staleness."""


class FeedCore:
    """Validation, de-duplication and freshness for the live feed's pairs.

    Args:
        tick_sizes: each pair and its market's price step (to model quotes around trades).
        stale_after_s: seconds without valid data after which a pair is stale.
        now: monotonic seconds at start; staleness counts from here until data arrives.
    """

    def __init__(self, tick_sizes: Mapping[str, float], stale_after_s: float, now: float) -> None:
        if not (math.isfinite(stale_after_s) and stale_after_s > 0):
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s!r}")
        self.stale_after_s = stale_after_s
        self._pairs = {pair: _Pair(tick, now) for pair, tick in tick_sizes.items()}
        self.stale_pairs: frozenset[str] = frozenset()
        """Pairs stale right now; replaced as a whole so other threads may read it."""

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(self._pairs)

    def reset_clock(self, now: float) -> None:
        """Start counting freshness from ``now`` (the feed's start), for every pair."""
        for data in self._pairs.values():
            data.data_at = max(data.data_at, now)

    # -- records in --------------------------------------------------------------------------

    def trades(self, pair: str, records: Iterable[Any], now: float, wall_ms: int) -> Converted:
        """ccxt trades of ``pair`` (oldest first) -> ticks; bad and repeated ones are counted.

        Valid data makes the pair fresh when its newest trade is recent (stamped within
        ``stale_after_s`` of ``wall_ms``): a backlog resent after an outage is traded on as
        history (strategies see it) but does not lift staleness.

        A tick's quotes are the pair's last quote when it is fresher than ``stale_after_s``,
        widened to include the trade price (a trade happens at the bid or the ask of its
        moment); otherwise they are modelled from the price and the tick size.
        """
        data = self._pairs[pair]
        out: list[MarketTick] = []
        for record in records:
            try:
                tick = self._trade(pair, data, record, now, wall_ms)
            except _InvalidError as invalid:
                data.dropped[invalid.args[0]] += 1
                continue
            if tick is not None:
                out.append(tick)
        return self._emit(data, pair, out, now, wall_ms)

    def _trade(self, pair: str, data: _Pair, record: Any, now: float,
               wall_ms: int) -> MarketTick | None:
        if not isinstance(record, Mapping):
            raise _InvalidError(MALFORMED)
        symbol = record.get("symbol")
        if symbol is not None and symbol != pair:
            raise _InvalidError(MALFORMED)
        price = _positive(record.get("price"))
        amount = _number(record.get("amount"))
        if amount < 0:
            raise _InvalidError(NON_POSITIVE)
        ts = _timestamp(record.get("timestamp"), wall_ms)
        side = _side(record.get("side"))
        trade_id = record.get("id")
        key = trade_id if trade_id is not None else (ts, price, amount, record.get("side"))
        if key in data.seen:
            raise _InvalidError(DUPLICATE)
        if ts < data.last_ts:
            raise _InvalidError(TIME_BACKWARDS)
        data.seen.add(key)
        quote = data.quote
        if quote is not None and now - quote.at <= self.stale_after_s:
            bid, ask = min(quote.bid, price), max(quote.ask, price)
        else:
            bid, ask = model_quotes(price, data.tick_size, side)
        data.last_ts = ts
        return MarketTick(pair=pair, ts_ms=ts, price=price, bid=bid, ask=ask, amount=amount,
                          side=side)

    def quote(self, pair: str, record: Any, now: float) -> FeedStale | None:
        """A ccxt ticker or bid/ask record of ``pair``: keep its best bid and ask for the next
        trades. A valid quote is fresh data; returns the notice if it ends staleness."""
        data = self._pairs[pair]
        try:
            bid, ask = self._book(pair, record)
        except _InvalidError as invalid:
            data.dropped[invalid.args[0]] += 1
            return None
        data.quote = Quote(bid=bid, ask=ask, at=now)
        return self._fresh(data, pair, now)

    @staticmethod
    def _book(pair: str, record: Any) -> tuple[float, float]:
        if not isinstance(record, Mapping):
            raise _InvalidError(MALFORMED)
        symbol = record.get("symbol")
        if symbol is not None and symbol != pair:
            raise _InvalidError(MALFORMED)
        bid, ask = _positive(record.get("bid")), _positive(record.get("ask"))
        if bid > ask:
            raise _InvalidError(CROSSED_BOOK)
        return bid, ask

    def ticker(self, pair: str, record: Any, now: float, wall_ms: int) -> Converted:
        """A polled ccxt ticker -> one tick at its last price (REST feed), with its own bid and
        ask when it has both, else quotes modelled around the price. A ticker without a
        timestamp is stamped with the local clock."""
        data = self._pairs[pair]
        try:
            tick = self._ticker(pair, data, record, wall_ms)
        except _InvalidError as invalid:
            data.dropped[invalid.args[0]] += 1
            return Converted(ticks=())
        data.quote = Quote(bid=tick.bid, ask=tick.ask, at=now)
        return self._emit(data, pair, [tick], now, wall_ms)

    def _ticker(self, pair: str, data: _Pair, record: Any, wall_ms: int) -> MarketTick:
        if not isinstance(record, Mapping):
            raise _InvalidError(MALFORMED)
        symbol = record.get("symbol")
        if symbol != pair:
            # ccxt leaves the symbol None when the reply was garbage: that is no ticker
            raise _InvalidError(MALFORMED if symbol is not None else MISSING_FIELD)
        last = record.get("last")
        price = _positive(last if last is not None else record.get("close"))
        stamp = record.get("timestamp")
        ts = wall_ms if stamp is None else _timestamp(stamp, wall_ms)
        if record.get("bid") is None and record.get("ask") is None:
            bid, ask = model_quotes(price, data.tick_size, None)
        else:
            bid, ask = self._book(pair, record)
        if ts < data.last_ts:
            raise _InvalidError(TIME_BACKWARDS)
        data.last_ts = ts
        return MarketTick(pair=pair, ts_ms=ts, price=price, bid=bid, ask=ask)

    def failed_request(self, pair: str) -> None:
        """A reply ccxt choked on (it raised something other than a ccxt error)."""
        self._pairs[pair].dropped[FAILED_REQUEST] += 1

    def _emit(self, data: _Pair, pair: str, ticks: list[MarketTick], now: float,
              wall_ms: int) -> Converted:
        if not ticks:
            return Converted(ticks=())
        data.ticks += len(ticks)
        # A backlog (trades the exchange stamped more than stale_after_s ago, resent after an
        # outage) is delivered, but only recent data makes the pair fresh: no entry is
        # opened on a feed that lags.
        recent = ticks[-1].ts_ms >= wall_ms - self.stale_after_s * 1000
        return Converted(ticks=tuple(ticks),
                         fresh=self._fresh(data, pair, now) if recent else None)

    # -- freshness ---------------------------------------------------------------------------

    def _fresh(self, data: _Pair, pair: str, now: float) -> FeedStale | None:
        data.data_at = now
        if not data.stale:
            return None
        data.stale = False
        self.stale_pairs = self.stale_pairs - {pair}
        return FeedStale(pair=pair, stale=False, age_s=round(now - data.stale_since, 3),
                         ts_ms=0)

    def check_stale(self, now: float) -> list[FeedStale]:
        """Pairs that have just gone stale (no valid data for ``stale_after_s``); call it on a
        timer. ``age_s`` is the silence so far; ``ts_ms`` is left 0 for the shell to stamp."""
        out = []
        for pair, data in self._pairs.items():
            age = now - data.data_at
            if not data.stale and age >= self.stale_after_s:
                data.stale = True
                data.stale_since = data.data_at
                out.append(FeedStale(pair=pair, stale=True, age_s=round(age, 3), ts_ms=0))
        if out:
            self.stale_pairs = self.stale_pairs | {n.pair for n in out}
        return out

    # -- reporting ---------------------------------------------------------------------------

    def dropped(self, pair: str | None = None) -> dict[str, int]:
        """Records dropped by reason, of ``pair`` or of all pairs (every reason present)."""
        if pair is not None:
            return dict(self._pairs[pair].dropped)
        total = dict.fromkeys(DROP_REASONS, 0)
        for data in self._pairs.values():
            for reason, count in data.dropped.items():
                total[reason] += count
        return total

    def ticks_out(self, pair: str) -> int:
        return self._pairs[pair].ticks


# -- reconnecting ------------------------------------------------------------------------------


class Backoff:
    """Reconnect delays: exponential from ``initial_s`` up to ``max_s``, each drawn at random
    from the upper half of its step (so many clients do not retry in step), never below
    ``initial_s``."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random) -> None:
        if not (0 < initial_s <= max_s and math.isfinite(max_s)):
            raise ValueError(f"need 0 < initial_s <= max_s, got {initial_s!r}, {max_s!r}")
        self.initial_s = initial_s
        self.max_s = max_s
        self._rng = rng
        self.attempts = 0

    def next_delay(self) -> float:
        step = min(self.max_s, self.initial_s * 2.0 ** min(self.attempts, 60))
        self.attempts += 1
        return self._rng.uniform(max(self.initial_s, step / 2), step)

    def reset(self) -> None:
        self.attempts = 0


@attrs.frozen(kw_only=True)
class LinkChange:
    """A connection change worth one log line (``None`` from ``Links`` means: stay quiet)."""

    kind: str
    """``down``: the first stream of a healthy feed failed; ``up``: every stream works again."""
    stream: str
    error: str = ""
    down_s: float = 0.0
    """For ``up``: how long the outage lasted."""
    failures: int = 0
    """For ``up``: failed attempts during the outage, over all streams."""


class Links:
    """The streams' connection states and backoffs; an outage is one ``down`` and one ``up``
    however many streams and retries it takes: it starts with the first failure and ends with
    the first delivery after it.

    Args:
        streams: stream names (``trades:BTC/USDT``, ``poll:ETH/USDT``, ...).
    """

    def __init__(self, streams: Sequence[str], initial_s: float, max_s: float,
                 rng: random.Random) -> None:
        self._backoff = {s: Backoff(initial_s, max_s, rng) for s in streams}
        self._down: set[str] = set()
        self._since = 0.0
        self._failures = 0
        self.disconnects = 0
        """Outages so far."""
        self.reconnects = 0
        """Outages that ended."""

    def failed(self, stream: str, error: str, now: float) -> tuple[float, LinkChange | None]:
        """``stream`` failed: how long to wait before retrying it, and the change to log."""
        delay = self._backoff[stream].next_delay()
        self._failures += 1
        change = None
        if not self._down:
            self._since = now
            self._failures = 1
            self.disconnects += 1
            change = LinkChange(kind="down", stream=stream, error=error)
        self._down.add(stream)
        return delay, change

    def succeeded(self, stream: str, now: float) -> LinkChange | None:
        """``stream`` delivered: its backoff starts over, and the outage (if any) is over. The
        streams share the exchange's connections, so data on any of them means the exchange
        is reachable again; a quiet stream (no quotes changing) would otherwise hold the outage
        open. A stream that keeps failing on its own opens a new outage on its next failure."""
        backoff = self._backoff.get(stream)
        if backoff is not None:
            backoff.reset()
        if not self._down:
            return None
        self._down.clear()
        self.reconnects += 1
        return LinkChange(kind="up", stream=stream, down_s=round(now - self._since, 3),
                          failures=self._failures)

    def drop_stream(self, stream: str, now: float) -> LinkChange | None:
        """Stop tracking ``stream`` (given up on, unsupported): it no longer holds an outage
        open."""
        self._backoff.pop(stream, None)
        if stream not in self._down:
            return None
        self._down.discard(stream)
        if self._down:
            return None
        self.reconnects += 1
        return LinkChange(kind="up", stream=stream, down_s=round(now - self._since, 3),
                          failures=self._failures)

    @property
    def down(self) -> frozenset[str]:
        return frozenset(self._down)
