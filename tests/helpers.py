"""Test-only strategies and waiting helpers (importable as ``tests.helpers:ClassName``)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from actors.messages import MarketTick, Signal
from strategies.base import Strategy

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name: str) -> str:
    """Path of a recorded data file, or skip the test where ../shared is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"recorded data {name} not present (../shared/data is optional)")
    return str(path)


def eventually(predicate: Callable[[], bool], timeout: float = 10.0,
               message: str = "condition") -> None:
    """Wait until ``predicate()`` holds, re-checking on a short timed wait, or fail."""
    deadline = time.monotonic() + timeout
    idle = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        idle.wait(0.01)


class EventLog:
    """Collects events from ``TradingSystem.subscribe`` and wakes waiters on each one."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self._cond = threading.Condition()

    def __call__(self, event: object) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: type) -> list[Any]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, predicate: Callable[[list[object]], bool], timeout: float = 10.0,
                 message: str = "event") -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.events), timeout):
                pytest.fail(f"timed out after {timeout} s waiting for {message}")


@attrs.frozen(kw_only=True)
class _NoParams:
    timeframe_s: float = 0.0


@attrs.frozen(kw_only=True)
class _RaiseParams:
    timeframe_s: float = 0.0
    above: float = 0.0
    """Raise on prices above this: one config can crash BTC (60,000) and spare ETH (3,000)."""


class BuyOnce(Strategy):
    """BUY on the first live tick, then never exit by signal (the exit rules do that)."""

    name = "buy_once"
    Params = _NoParams

    @property
    def warmup(self) -> int:
        return 0

    def on_price(self, price: float) -> Signal:
        if getattr(self, "_done", False):
            return Signal.HOLD
        self._done = True
        return Signal.BUY


class RaiseAbove(Strategy):
    """Raises on every tick priced above ``above``: a crashing strategy."""

    name = "raise_above"
    Params = _RaiseParams

    @property
    def warmup(self) -> int:
        return 0

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        """Warm-up must not raise, or the pair could never even start."""

    def on_price(self, price: float) -> Signal:
        if price > self.params.above:
            raise RuntimeError("strategy exploded on purpose")
        return Signal.HOLD


def endless_chop(pairs: dict[str, float], stop: threading.Event, start_ms: int,
                 interval_ms: int = 100, seed: int = 1) -> Iterator[MarketTick]:
    """Ticks for every pair, round-robin, around each pair's price, until ``stop`` is set."""
    rng = random.Random(seed)
    ts = start_ms
    while not stop.is_set():
        ts += interval_ms
        for pair, mid in pairs.items():
            price = round(mid * (1 + rng.uniform(-0.002, 0.002)), 2)
            yield MarketTick(pair=pair, ts_ms=ts, price=price, bid=price - 0.01,
                             ask=price + 0.01)


# -- supervision tests: strategies that misbehave on cue --------------------------------------
#
# Strategies are built by dotted path, so a test cannot hand one an object. These take a
# ``token`` param instead: a test picks a fresh token, and the strategy's class-level
# "only once" flags and ``gate(token)`` events are keyed by it, so tests never share state.
# Each one ignores warm-up history: only live ticks count.

_GATES: dict[str, threading.Event] = {}
_GATES_LOCK = threading.Lock()


def gate(token: str) -> threading.Event:
    """The module-level event named ``token`` (created on first use), set only by tests."""
    with _GATES_LOCK:
        return _GATES.setdefault(token, threading.Event())


@attrs.frozen(kw_only=True)
class _TokenParams:
    timeframe_s: float = 0.0
    token: str = ""


class _LiveOnly(Strategy):
    """Base: no warm-up (history would call ``on_price`` and spend a one-off signal)."""

    @property
    def warmup(self) -> int:
        return 0

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        """Only live ticks count."""


@attrs.frozen(kw_only=True)
class _BuyThenRaiseParams:
    timeframe_s: float = 0.0
    above: float = 0.0
    """Only pairs priced above this ever raise."""
    after: int = 5
    """Live ticks (of this instance, so of each generation) before it starts raising."""


class BuyThenRaise(_LiveOnly):
    """BUY on the first live tick; from the ``after``-th live tick on, raise where the price is
    above ``above``. Every generation does the same, so such a pair holds a position and then
    crash-loops until the supervisor gives up on it."""

    name = "buy_then_raise"
    Params = _BuyThenRaiseParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._seen = 0

    def on_price(self, price: float) -> Signal:
        self._seen += 1
        if self._seen >= self.params.after and price > self.params.above:
            raise RuntimeError("strategy exploded on purpose after buying")
        return Signal.BUY if self._seen == 1 else Signal.HOLD


@attrs.frozen(kw_only=True)
class _HangParams:
    timeframe_s: float = 0.0
    token: str = ""
    above: float = 0.0
    """Only a pair priced above this hangs."""


class HangOnce(_LiveOnly):
    """The first instance that sees a live tick above ``above`` blocks inside ``on_price``
    until ``gate(token)`` is set, sets ``gate(token + ":woke")`` and answers BUY (a stale
    generation trying to trade). Every other instance (later generations, cheaper pairs)
    answers BUY on every tick: the orchestrator enters once, when the pair is flat and has
    its book. (A one-off BUY could fall on a tick a restarted pair sees before its book
    arrives, which the orchestrator discards.)"""

    name = "hang_once"
    Params = _HangParams
    _hung: set[str] = set()
    _lock = threading.Lock()

    def on_price(self, price: float) -> Signal:
        token = self.params.token
        with HangOnce._lock:
            first = price > self.params.above and token not in HangOnce._hung
            if first:
                HangOnce._hung.add(token)
        if first:
            gate(token).wait()
            gate(token + ":woke").set()
        return Signal.BUY


@attrs.frozen(kw_only=True)
class _BuyThenHangParams:
    timeframe_s: float = 0.0
    token: str = ""
    after: int = 20
    """Live ticks of the first instance before it hangs (time for its entry to fill)."""


class BuyThenHangOnce(_LiveOnly):
    """The first instance answers BUY (the orchestrator enters once, when flat and with its
    book) and, on its ``after``-th live tick, sets ``gate(token + ":hung")`` and blocks until
    ``gate(token)`` is set. Every other instance holds: a position it inherits is closed
    only by hand."""

    name = "buy_then_hang_once"
    Params = _BuyThenHangParams
    _started: set[str] = set()
    _lock = threading.Lock()

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._first: bool | None = None
        """Decided on the first live tick: instances are also built that never trade."""
        self._seen = 0

    def on_price(self, price: float) -> Signal:
        if self._first is None:
            with BuyThenHangOnce._lock:
                self._first = self.params.token not in BuyThenHangOnce._started
                BuyThenHangOnce._started.add(self.params.token)
        if not self._first:
            return Signal.HOLD
        self._seen += 1
        if self._seen == self.params.after:
            gate(self.params.token + ":hung").set()
            gate(self.params.token).wait()
        return Signal.BUY


class BuyThenCrashOnce(_LiveOnly):
    """The first instance buys on its first live tick and raises on its second; every later
    instance answers BUY on every tick, which the orchestrator must not act on while the
    first entry still rests, nor once it has filled."""

    name = "buy_then_crash_once"
    Params = _TokenParams
    _crashed: set[str] = set()
    _lock = threading.Lock()

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._seen = 0
        self._doomed = False

    def on_price(self, price: float) -> Signal:
        self._seen += 1
        if self._seen == 1:
            with BuyThenCrashOnce._lock:
                self._doomed = self.params.token not in BuyThenCrashOnce._crashed
                BuyThenCrashOnce._crashed.add(self.params.token)
            return Signal.BUY
        if self._doomed:
            raise RuntimeError("strategy crashed between submitting and filling on purpose")
        return Signal.BUY


class SellOnGate(_LiveOnly):
    """HOLD until ``gate(token)`` is set, then SELL once: an exit only the test can trigger."""

    name = "sell_on_gate"
    Params = _TokenParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._sold = False

    def on_price(self, price: float) -> Signal:
        if self._sold or not gate(self.params.token).is_set():
            return Signal.HOLD
        self._sold = True
        return Signal.SELL


@attrs.frozen(kw_only=True)
class _FlipParams:
    timeframe_s: float = 0.0
    period: int = 10
    hold_below: float = 0.0
    """Pairs priced below this buy and hold."""


class Flip(_LiveOnly):
    """BUY, then SELL ``period`` live ticks later, and again: a pair that enters all the time.
    Below ``hold_below`` it answers BUY on every tick instead: it enters once and holds."""

    name = "flip"
    Params = _FlipParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._seen = 0

    def on_price(self, price: float) -> Signal:
        self._seen += 1
        if price < self.params.hold_below:
            return Signal.BUY
        phase = (self._seen - 1) % (2 * self.params.period)
        if phase == 0:
            return Signal.BUY
        if phase == self.params.period:
            return Signal.SELL
        return Signal.HOLD


class BadWarmUp(_LiveOnly):
    """Builds (so a swap to it passes validation) but fails to warm up in the pair."""

    name = "bad_warm_up"
    Params = _NoParams

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        raise RuntimeError("warm-up failed on purpose")

    def on_price(self, price: float) -> Signal:
        return Signal.HOLD


def rising_then_dipping(pair: str, price: float, stop: threading.Event, dip: threading.Event,
                        start_ms: int, interval_ms: int = 100) -> Iterator[MarketTick]:
    """Ticks for ``pair`` that creep up from ``price`` (so a buy limit at the bid never
    fills) until ``dip`` is set, then sit 0.5 % below the highest price (crossing it)."""
    ts, high = start_ms, price
    while not stop.is_set():
        ts += interval_ms
        if dip.is_set():
            now = round(high * 0.995, 2)
        else:
            high = now = round(high + 0.5, 2)
        yield MarketTick(pair=pair, ts_ms=ts, price=now, bid=now - 0.01, ask=now + 0.01)


@contextlib.contextmanager
def trading(config: Any, source: Callable[[threading.Event], Iterable[MarketTick]] | None = None
            ) -> Iterator[tuple[Any, EventLog]]:
    """A started ``TradingSystem`` with an ``EventLog`` subscribed before the first tick;
    ``source`` builds the feed from a stop event that is set once the system has stopped.
    (Imported here: strategies in this module also load in isolated children, which need
    none of the system.)"""
    from supervision import TradingSystem

    stop = threading.Event()
    log = EventLog()
    system = TradingSystem(config, source=None if source is None else source(stop))
    system.subscribe(log)
    try:
        with system:
            yield system, log
    finally:
        stop.set()


def db_rows(location: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (with ``?`` placeholders) read by a connection of its own, as a second
    process would: from an SQLite file or a PostgreSQL URL."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as pg:
            cursor = pg.execute(sql.replace("?", "%s"), args or None)
            return cursor.fetchall() if cursor.description else []
    import sqlite3

    with contextlib.closing(sqlite3.connect(location, isolation_level=None)) as conn:
        return conn.execute(sql, args).fetchall()
