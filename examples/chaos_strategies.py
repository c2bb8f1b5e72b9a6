"""Misbehaving strategies for ``examples/chaos.py``: one that crashes, one that hangs.

The strategy registry builds strategies from an importable ``module:ClassName`` path, so
these live in a module of their own; ``chaos.py`` puts this folder on ``sys.path`` and names
them ``chaos_strategies:Crasher`` and ``chaos_strategies:Hanger``. Both trade like
``ema_cross`` in between their fits, and both count only live ticks: the warm-up history a
pair replays into a new strategy never triggers them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import attrs

from actors.messages import MarketTick, Signal
from strategies.base import int_at_least, timeframe_validator
from strategies.ema_cross import EmaCross

RELEASE = threading.Event()
"""Set by ``chaos.py`` at the end: the hung thread wakes up (and runs into the fence)."""


@attrs.frozen(kw_only=True)
class CrasherParams:
    fast: int = attrs.field(default=10, validator=int_at_least(1))
    slow: int = attrs.field(default=30, validator=int_at_least(1))
    timeframe_s: float = attrs.field(default=0.0, validator=timeframe_validator)
    every: int = attrs.field(default=20, validator=int_at_least(1))
    """Raise on every ``every``-th live tick (each new generation counts afresh)."""


class Crasher(EmaCross):
    """``ema_cross`` that raises on every ``every``-th live tick: a crash loop."""

    name = "crasher"
    Params = CrasherParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._live = False
        self._seen = 0

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        super().warm_up(ticks)
        self._live = True

    def on_price(self, price: float) -> Signal:
        if self._live:
            self._seen += 1
            if self._seen % self.params.every == 0:
                raise RuntimeError(f"crasher: deliberate crash at live tick {self._seen}")
        return super().on_price(price)


class Hanger(EmaCross):
    """``ema_cross`` whose first instance to see a live tick blocks on ``RELEASE``: a hang.
    Later instances (the generations that replace it) trade normally."""

    name = "hanger"
    Params = EmaCross.Params
    _hung = False
    _lock = threading.Lock()

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._live = False

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        super().warm_up(ticks)
        self._live = True

    def on_price(self, price: float) -> Signal:
        if self._live:
            with Hanger._lock:
                first, Hanger._hung = not Hanger._hung, True
            if first:
                RELEASE.wait()
        return super().on_price(price)
