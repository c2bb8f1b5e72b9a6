"""Test-only strategies and waiting helpers (importable as ``tests.helpers:ClassName``)."""

from __future__ import annotations

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
