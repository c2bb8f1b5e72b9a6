"""Recorded market data from CSV files, turned into ticks.

Two schemas are read (see ``shared/data/README.md``)::

    timestamp_ms,price,amount,side               trades: one tick per row
    timestamp_ms,open,high,low,close,volume      candles: four ticks per row

Files are streamed row by row with the ``csv`` module, never loaded whole, on whichever thread
iterates them (the market data actor's). A bad header or a missing file fails at once with a
``FeedError`` naming the file; a bad row never stops the feed: it becomes a tick with a NaN
price, so that ``MarketDataCore.accept``, the one place that drops ticks, counts it.
"""

from __future__ import annotations

import csv
import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TextIO

from actors.market.simulator import decimals_of, fit_tick, profile_for
from actors.messages import MarketTick, Side

TRADES_HEADER = ("timestamp_ms", "price", "amount", "side")
CANDLES_HEADER = ("timestamp_ms", "open", "high", "low", "close", "volume")
DEFAULT_BAR_MS = 60_000
"""Bar interval assumed for a candle file with a single row."""

_BUY = Side.BUY
_SELL = Side.SELL
_SIDES = {"buy": _BUY, "sell": _SELL}
_UNPARSEABLE = "<unparseable line>"


class FeedError(ValueError):
    """A recorded data file that cannot be replayed: missing, unreadable or of unknown schema."""


def _open(path: str | Path) -> TextIO:
    try:
        # utf-8-sig: a spreadsheet-saved file starts with a byte order mark. Undecodable bytes
        # become U+FFFD, which then fails to parse as a number: a bad row, not a dead feed.
        return open(
            path, newline="", encoding="utf-8-sig", errors="replace",
        )
    except FileNotFoundError:
        raise FeedError(f"replay file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise FeedError(f"replay file {str(path)!r} cannot be read: {exc}") from None


def _schema(path: str | Path, header: list[str] | None) -> str:
    found = tuple(h.strip().lower() for h in header) if header is not None else None
    if found == TRADES_HEADER:
        return "trades"
    if found == CANDLES_HEADER:
        return "candles"
    shown = ",".join(header)[:200] if header is not None else "nothing (the file is empty)"
    raise FeedError(
        f"replay file {str(path)!r} has header {shown!r}; expected "
        f"{','.join(TRADES_HEADER)!r} (trades) or {','.join(CANDLES_HEADER)!r} (candles)"
    )


def validate_csv(path: str | Path) -> str:
    """Return ``"trades"`` or ``"candles"`` from the file's header, reading nothing else.

    Raises:
        FeedError: the file is missing, unreadable or has neither header.
    """
    with _open(path) as f:
        try:
            header = next(csv.reader(f), None)
        except csv.Error as exc:
            raise FeedError(f"replay file {str(path)!r} is not a CSV text file: {exc}") from None
        return _schema(path, header)


def read_csv(path: str | Path, pair: str) -> Iterator[MarketTick]:
    """Ticks for ``pair`` from a trades or candles file, in file order.

    The header is checked now; rows are read lazily as the iterator is consumed. Trades: a
    taker buy traded at the ask (bid one tick below), a sell at the bid; an unknown side gets
    quotes one tick either side. Candles: open, then low and high (low first when the candle
    closed up, high first when it closed down), then close, a quarter bar apart, each with a
    quarter of the volume and quotes one tick either side.

    Raises:
        FeedError: the file is missing, unreadable or has neither header.
        PairError: ``pair`` is not a valid symbol.
    """
    schema = validate_csv(path)
    tick = profile_for(pair).tick_size
    rows = _rows(path)
    return _trades(rows, pair, tick) if schema == "trades" else _candles(rows, pair, tick)


def open_feeds(replays: Mapping[str, str | Path]) -> Iterator[MarketTick]:
    """All files of ``{pair: path}`` merged into one stream in timestamp order.

    Every file's header is checked before the first tick is read. Ties in time keep the
    mapping's order.
    """
    feeds = [read_csv(path, pair) for pair, path in replays.items()]
    if len(feeds) == 1:
        return feeds[0]  # nothing to merge: one generator less per tick
    return heapq.merge(*feeds, key=_ts)


def _ts(tick: MarketTick) -> int:
    return tick.ts_ms


def _rows(path: str | Path) -> Iterator[list[str]]:
    with _open(path) as f:
        reader = csv.reader(f)
        next(reader, None)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                # A line the csv module rejects (a NUL byte, say) becomes a bad row.
                row = [_UNPARSEABLE]
            # A blank line is not a row of data; anything else is yielded, good or bad.
            if row:
                yield row


class _Quoter:
    """Quotes around a recorded price on the pair's tick grid (finer for tiny prices)."""

    __slots__ = ("_dec", "_pair", "_tick")

    def __init__(self, pair: str, tick: float) -> None:
        self._pair = pair
        self._tick = tick
        self._dec = decimals_of(tick)

    def quote(self, ts: int, price: float, amount: float, side: Side | None) -> MarketTick:
        tick = self._tick
        if tick > price * 1e-2:
            tick = fit_tick(tick, price)
            dec = decimals_of(tick)
        else:
            dec = self._dec
        if side is _BUY:
            bid, ask = round(price - tick, dec), price
        elif side is _SELL:
            bid, ask = price, round(price + tick, dec)
        else:
            bid, ask = round(price - tick, dec), round(price + tick, dec)
        return MarketTick(
            pair=self._pair, ts_ms=ts, price=price, bid=bid, ask=ask, amount=amount, side=side,
        )

    def bad(self, ts: int) -> MarketTick:
        nan = math.nan
        return MarketTick(pair=self._pair, ts_ms=ts, price=nan, bid=nan, ask=nan)


def _trades(rows: Iterable[list[str]], pair: str, tick: float) -> Iterator[MarketTick]:
    quoter = _Quoter(pair, tick)
    last_ts = 0
    for row in rows:
        try:
            ts_text, price_text, amount_text, side_text = row
            ts = int(ts_text)
            price, amount = float(price_text), float(amount_text)
        except ValueError:
            # Without a readable time a bad row takes the previous row's, which keeps the
            # merged stream in order.
            last_ts = _int_or(row, last_ts)
            yield quoter.bad(last_ts)
            continue
        last_ts = ts
        side = _SIDES.get(side_text)  # as written by most files: no strip, no lower
        if side is None:
            side = _SIDES.get(side_text.strip().lower())
        yield quoter.quote(ts, price, amount, side)


def _candles(rows: Iterator[list[str]], pair: str, tick: float) -> Iterator[MarketTick]:
    quoter = _Quoter(pair, tick)
    first = next(rows, None)
    if first is None:
        return
    second = next(rows, None)
    bar_ms = DEFAULT_BAR_MS
    if second is not None:
        gap = _int_or(second, 0) - _int_or(first, 0)
        if gap > 0:
            bar_ms = gap
    q1, q2, q3 = bar_ms // 4, bar_ms // 2, 3 * bar_ms // 4
    pending = [first] if second is None else [first, second]
    last_ts = 0
    for row in _chain(pending, rows):
        try:
            ts_text, o_text, h_text, l_text, c_text, v_text = row
            ts = int(ts_text)
            o, h, lo, c = float(o_text), float(h_text), float(l_text), float(c_text)
            amount = float(v_text) / 4
        except ValueError:
            last_ts = _int_or(row, last_ts)
            yield quoter.bad(last_ts)
            continue
        last_ts = ts
        first_extreme, second_extreme = (lo, h) if c >= o else (h, lo)
        yield quoter.quote(ts, o, amount, None)
        yield quoter.quote(ts + q1, first_extreme, amount, None)
        yield quoter.quote(ts + q2, second_extreme, amount, None)
        yield quoter.quote(ts + q3, c, amount, None)


def _chain(head: list[list[str]], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield from head
    yield from rest


def _int_or(row: list[str], default: int) -> int:
    try:
        return int(row[0])
    except (ValueError, IndexError):
        return default
