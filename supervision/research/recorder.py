"""What a backtest saw, recorded as it runs: equity samples, buy-and-hold, trades, fills.

``RunRecorder.wrap`` sits between the data and the threadless runtime. The runtime handles a
tick completely before it pulls the next one, so each time the market crosses a bar boundary
the recorder reads the account at a consistent moment: the ledger's cash and positions,
valued at the last price of each pair. Memory grows with the number of bars and trades, never
with the number of ticks (a year of 1-minute bars is about 13 MB of samples, whatever the
tick count); the charts keep at most ``chart_points`` points per series.

Events (``on_event``) turn fills into round trips: a BUY opens or adds to a pair's trade, SELLs
close it, and the ledger's ``PositionClosed`` gives its PnL and exit reason. Every fill feeds
the run's digest, so equal inputs give an equal digest.

Runs on the backtest's thread. A ``checkpoint`` callback may raise (an optimiser pruning a
hopeless trial): the run stops there, and nothing else is affected.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs

from actors.messages import Fill, MarketTick, OrderFilled, PositionClosed, Side


@attrs.frozen(kw_only=True)
class Trade:
    """One round trip: bought (maybe in parts), sold (maybe in parts)."""

    pair: str
    entry_ms: int
    exit_ms: int
    entry_price: float
    exit_price: float
    amount: float
    cost: float
    """Quote spent on the entry, fees included."""
    fees: float
    pnl: float
    exit_reason: str

    @property
    def duration_ms(self) -> int:
        return self.exit_ms - self.entry_ms

    @property
    def return_pct(self) -> float:
        return 100 * self.pnl / self.cost if self.cost else 0.0


class _OpenTrade:
    __slots__ = ("bought", "cost", "entry_ms", "fees", "pair", "proceeds", "sold", "spent")

    def __init__(self, pair: str, entry_ms: int) -> None:
        self.pair = pair
        self.entry_ms = entry_ms
        self.bought = self.sold = self.spent = self.proceeds = self.fees = self.cost = 0.0

    def close(self, exit_ms: int, pnl: float, reason: str) -> Trade:
        return Trade(pair=self.pair, entry_ms=self.entry_ms, exit_ms=exit_ms,
                     entry_price=self.spent / self.bought if self.bought else 0.0,
                     exit_price=self.proceeds / self.sold if self.sold else 0.0,
                     amount=self.bought, cost=self.cost, fees=self.fees, pnl=pnl,
                     exit_reason=reason)


@attrs.frozen(kw_only=True)
class PriceSeries:
    """A pair's price at chart resolution: close, low and high of each bucket."""

    ts: tuple[int, ...]
    close: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


@attrs.frozen(kw_only=True)
class Recording:
    """Everything ``RunRecorder`` kept, once the run has ended."""

    pairs: tuple[str, ...]
    initial_equity: float
    sample_ts: array[int] = attrs.field(eq=False)
    equity: array[float] = attrs.field(eq=False)
    buy_and_hold: array[float] = attrs.field(eq=False)
    bh_pairs: dict[str, array[float]] = attrs.field(eq=False)
    """Each pair's own buy-and-hold value (its share of the initial equity), per sample."""
    trades: tuple[Trade, ...]
    open_trades: tuple[Trade, ...]
    """Positions still held at the end, valued at the last price (not counted as trades)."""
    fills: int
    fees: float
    digest: str
    first_price: dict[str, float]
    last_price: dict[str, float]
    prices: dict[str, PriceSeries]
    ticks: int


def fill_key(fill: Fill) -> str:
    """What the digest takes of a fill: when, what, how much, at what price and fee (not its
    ids, which name the run)."""
    return (f"{fill.ts_ms},{fill.pair},{fill.side.value},{fill.price!r},{fill.amount!r},"
            f"{fill.fee!r};")


def fills_digest(fills: Iterable[Fill]) -> str:
    """The digest of a run that made ``fills`` (as ``Recording.digest``)."""
    digest = hashlib.sha256()
    for fill in fills:
        digest.update(fill_key(fill).encode())
    return digest.hexdigest()[:16]


class RunRecorder:
    """Samples the account every ``sample_ms`` of market time and collects the trades.

    Args:
        initial_equity: the account's starting equity (the quote funding).
        first_ms, last_ms: the traded span (for progress and chart buckets).
        sample_ms: how often equity is sampled (the data's bar interval).
    """

    def __init__(self, pairs: Sequence[str], initial_equity: float, first_ms: int,
                 last_ms: int, sample_ms: int, *, chart_points: int = 2000) -> None:
        self.pairs = tuple(pairs)
        self.initial_equity = initial_equity
        self.first_ms, self.last_ms = first_ms, max(last_ms, first_ms + 1)
        self.sample_ms = max(sample_ms, 1000)
        self.chart_ms = max(self.sample_ms, (self.last_ms - first_ms) // chart_points + 1)
        self._ledger: Any = None
        self._quote = ""
        self._last: dict[str, float] = {}
        self._first: dict[str, float] = {}
        self._units: dict[str, float] = {}
        self._share = initial_equity / max(len(self.pairs), 1)
        self.sample_ts: array[int] = array("q")
        self.equity: array[float] = array("d")
        self.bh: array[float] = array("d")
        self.bh_pairs: dict[str, array[float]] = {p: array("d") for p in self.pairs}
        self._chart: dict[str, list[list[float]]] = {p: [[], [], [], []] for p in self.pairs}
        self._next_chart = first_ms
        self._bucket_low: dict[str, float] = {}
        self._bucket_high: dict[str, float] = {}
        self._open: dict[str, _OpenTrade] = {}
        self.trades: list[Trade] = []
        self.fills = 0
        self.fees = 0.0
        self._digest = hashlib.sha256()
        self.ticks = 0
        self.progress: Callable[[int], None] | None = None
        """Called with the market time now and then (a progress bar)."""
        self.checkpoint: Callable[[int, RunRecorder], None] | None = None
        """Called at each of ``checkpoints`` evenly spaced market times, with its index."""
        self.checkpoints = 0
        self._checkpoint_done = 0

    def attach(self, ledger: Any, quote: str) -> None:
        """Read equity from this ledger (the threadless runtime's state)."""
        self._ledger = ledger
        self._quote = quote

    # -- the tick stream -----------------------------------------------------------------------

    def wrap(self, ticks: Iterable[MarketTick]) -> Iterator[MarketTick]:
        """Pass ``ticks`` through, sampling the account at each bar boundary."""
        last = self._last
        step = self.sample_ms
        next_sample = self.first_ms
        count = 0
        try:
            for tick in ticks:
                ts = tick.ts_ms
                if ts >= next_sample:
                    self._sample(ts - ts % step if ts - ts % step >= self.first_ms else ts)
                    next_sample = ts - ts % step + step
                price = tick.price
                if price > 0:  # a bad row's NaN never becomes a mark
                    if tick.pair not in self._first:
                        self._first_price(tick.pair, price)
                    last[tick.pair] = price
                count += 1
                yield tick
        finally:
            self.ticks = count

    def _first_price(self, pair: str, price: float) -> None:
        if pair in self.bh_pairs:
            self._first[pair] = price
            self._units[pair] = self._share / price

    def equity_now(self) -> float:
        """Cash plus every open position at its pair's last price."""
        ledger = self._ledger
        if ledger is None:
            return self.initial_equity
        last = self._last
        held = 0.0
        for position in ledger.positions.values():
            held += position.amount * last.get(position.pair, position.entry_price)
        return float(ledger.balances.get(self._quote, 0.0)) + held

    def _sample(self, ts: int) -> None:
        self.sample_ts.append(ts)
        self.equity.append(self.equity_now())
        last, units, share = self._last, self._units, self._share
        total = 0.0
        for pair, series in self.bh_pairs.items():
            value = units[pair] * last[pair] if pair in units else share
            series.append(value)
            total += value
        self.bh.append(total)
        self._chart_sample(ts)
        progress = self.progress
        if progress is not None:
            progress(ts)
        if self.checkpoints and self.checkpoint is not None:
            span = self.last_ms - self.first_ms
            index = (ts - self.first_ms) * self.checkpoints // span if span else 0
            if 0 < index < self.checkpoints and index > self._checkpoint_done:
                self._checkpoint_done = index
                self.checkpoint(index, self)

    def _chart_sample(self, ts: int) -> None:
        low, high = self._bucket_low, self._bucket_high
        for pair, price in self._last.items():
            if pair in self._chart:
                low[pair] = min(low.get(pair, price), price)
                high[pair] = max(high.get(pair, price), price)
        if ts < self._next_chart:
            return
        self._next_chart = ts - ts % self.chart_ms + self.chart_ms
        for pair, (t, close, lo, hi) in self._chart.items():
            last = self._last.get(pair)
            if last is None:
                continue
            price = last
            t.append(ts)
            close.append(price)
            lo.append(low.pop(pair, price))
            hi.append(high.pop(pair, price))

    # -- events --------------------------------------------------------------------------------

    def on_event(self, event: object) -> None:
        """The runtime's events: fills and closed positions become trades."""
        if isinstance(event, OrderFilled):
            fill = event.fill
            self.fills += 1
            self.fees += fill.fee
            self._digest.update(fill_key(fill).encode())
            trade = self._open.get(fill.pair)
            if fill.side is Side.BUY:
                if trade is None:
                    trade = self._open[fill.pair] = _OpenTrade(fill.pair, fill.ts_ms)
                trade.bought += fill.amount
                trade.spent += fill.amount * fill.price
                trade.cost += fill.amount * fill.price + fill.fee
            elif trade is not None:
                trade.sold += fill.amount
                trade.proceeds += fill.amount * fill.price
            if trade is not None:
                trade.fees += fill.fee
        elif isinstance(event, PositionClosed):
            trade = self._open.pop(event.pair, None)
            if trade is not None:
                self.trades.append(trade.close(event.ts_ms, event.pnl, event.reason.value))

    # -- the end -------------------------------------------------------------------------------

    def finish(self, end_ms: int) -> Recording:
        """The recording, with a last sample at ``end_ms`` (after the last tick)."""
        self._sample(max(end_ms, self.sample_ts[-1] if self.sample_ts else end_ms))
        open_trades = []
        for pair, trade in self._open.items():
            price = self._last.get(pair, 0.0)
            held = trade.bought - trade.sold
            pnl = trade.proceeds + held * price - trade.cost
            trade.proceeds += held * price
            trade.sold = trade.bought
            open_trades.append(trade.close(end_ms, pnl, "open"))
        prices = {pair: PriceSeries(ts=tuple(int(t) for t in series[0]),
                                    close=tuple(series[1]), low=tuple(series[2]),
                                    high=tuple(series[3]))
                  for pair, series in self._chart.items()}
        return Recording(
            pairs=self.pairs, initial_equity=self.initial_equity, sample_ts=self.sample_ts,
            equity=self.equity, buy_and_hold=self.bh, bh_pairs=self.bh_pairs,
            trades=tuple(self.trades), open_trades=tuple(open_trades), fills=self.fills,
            fees=self.fees, digest=self._digest.hexdigest()[:16],
            first_price=dict(self._first), last_price=dict(self._last), prices=prices,
            ticks=self.ticks)
