"""Misbehaving strategies for ``examples/chaos.py``: one that crashes, one that hangs; and
for process isolation (its tests and the noisy-neighbour benchmark): one that burns CPU, one
whose process exits, one whose process hangs.

The strategy registry builds strategies from an importable ``module:ClassName`` path, so
these live in a module of their own; ``chaos.py`` puts this folder on ``sys.path`` and names
them ``chaos_strategies:Crasher`` and ``chaos_strategies:Hanger``. Both trade like
``ema_cross`` in between their fits, and both count only live ticks: the warm-up history a
pair replays into a new strategy never triggers them.
"""

from __future__ import annotations

import os
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


class _LiveTicks(EmaCross):
    """``ema_cross`` that knows which prices are live (warm-up history never counts)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._live = False
        self._seen = 0
        if self.params.pid_dir:  # so that tests can watch the processes come and go
            with open(os.path.join(self.params.pid_dir, str(os.getpid())), "w"):
                pass

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        super().warm_up(ticks)
        self._live = True


@attrs.frozen(kw_only=True)
class BurnerParams:
    fast: int = attrs.field(default=10, validator=int_at_least(1))
    slow: int = attrs.field(default=30, validator=int_at_least(1))
    timeframe_s: float = attrs.field(default=0.0, validator=timeframe_validator)
    pid_dir: str = ""
    """A folder where each instance leaves an empty file named after its process id."""
    loops: int = attrs.field(default=200_000, validator=int_at_least(0))
    """Iterations of a pure-Python loop run on every live price (about 20 ms at 10 M/s)."""


class Burner(_LiveTicks):
    """``ema_cross`` that spins a pure-Python loop (holding the GIL) on every live price: the
    noisy neighbour. Its parameters travel with its spec, so it burns in a child process too."""

    name = "burner"
    Params = BurnerParams

    def on_price(self, price: float) -> Signal:
        if self._live:
            acc = 0
            for i in range(self.params.loops):
                acc = (acc + i * i) & 0xFFFF
        return super().on_price(price)


@attrs.frozen(kw_only=True)
class OnceParams:
    fast: int = attrs.field(default=10, validator=int_at_least(1))
    slow: int = attrs.field(default=30, validator=int_at_least(1))
    timeframe_s: float = attrs.field(default=0.0, validator=timeframe_validator)
    pid_dir: str = ""
    """A folder where each instance leaves an empty file named after its process id."""
    at: int = attrs.field(default=3, validator=int_at_least(1))
    """The live price on which it misbehaves."""
    marker: str = ""
    """A file the first misbehaving instance creates; instances that find it behave. Empty:
    every instance misbehaves. (A file, because each instance may live in its own process.)"""


def _first_to_claim(marker: str) -> bool:
    if not marker:
        return True
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


class Exiter(_LiveTicks):
    """Ends its whole process with ``os._exit(3)`` on live price ``at``: in a pair's own
    process, a crash no ``except`` can catch (as a segfault in an extension would be)."""

    name = "exiter"
    Params = OnceParams

    def on_price(self, price: float) -> Signal:
        if self._live:
            self._seen += 1
            if self._seen == self.params.at and _first_to_claim(self.params.marker):
                os._exit(3)
        return super().on_price(price)


class Stuck(_LiveTicks):
    """Blocks forever on live price ``at`` (never returns): a hung strategy that only killing
    its process ends. Run it isolated; in the pair's actor it would hold that actor's worker
    for good (the pair pool starts another)."""

    name = "stuck"
    Params = OnceParams

    def on_price(self, price: float) -> Signal:
        if self._live:
            self._seen += 1
            if self._seen == self.params.at and _first_to_claim(self.params.marker):
                threading.Event().wait()
        return super().on_price(price)
