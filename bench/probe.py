"""Instrumented strategies the benchmarks plug in through the public strategy API.

Nothing in the product is patched or subclassed apart from the strategy, which is the
documented extension point (``--strategy package.module:ClassName``). ``ProbedEmaCross`` is
the production ``ema_cross`` with three optional, module-level controls the benchmarks set
before a run:

- ``PROBE`` records, per live tick, ``perf_counter_ns() - tick.recv_ns`` on entry to the
  strategy (``tick.recv_ns`` is stamped by the market data actor's feed thread), and the
  ``recv_ns`` of every tick on which the strategy raised a signal, keyed by
  ``(pair, ts_ms)``, so an order acknowledgement can be matched to the tick it came from
  (the order's ``created_ms`` is the proposing tick's ``ts_ms``).
- ``CRASH`` makes a named pair raise once on its next live tick (restart benchmark); the
  time of the raise and of the next generation's first live tick are recorded.
- ``BURN`` makes named pairs spin a pure-Python loop for a fixed time on every live tick
  (noisy-neighbour benchmark).

Warm-up history replayed into a new strategy carries the ``recv_ns`` of its original
delivery, so recording is switched off inside ``warm_up``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from actors.messages import MarketTick, Signal
from strategies.ema_cross import EmaCross

_HOLD = Signal.HOLD
_perf_ns = time.perf_counter_ns


class Probe:
    """Where the probed strategies write; reset by each benchmark before it starts."""

    def __init__(self) -> None:
        self.enabled = False
        self.measure_from_ms = 0
        """Only ticks with ``ts_ms`` at or after this are recorded (skips the start)."""
        self.latency_ns: dict[str, list[int]] = {}
        """Per pair: tick entered market data -> strategy called, for every live tick."""
        self.signal_recv_ns: dict[tuple[str, int], int] = {}
        """(pair, ts_ms) -> recv_ns of ticks on which the strategy signalled."""
        self.first_tick_ns: dict[str, int] = {}
        """Per pair: wall time (perf_counter_ns) its first live tick reached a strategy."""

    def reset(self, pairs: Iterable[str], measure_from_ms: int = 0) -> None:
        self.latency_ns = {p: [] for p in pairs}
        self.signal_recv_ns = {}
        self.first_tick_ns = {}
        self.measure_from_ms = measure_from_ms
        self.enabled = True

    def samples(self, exclude: Iterable[str] = ()) -> list[int]:
        skip = set(exclude)
        return [x for p, xs in self.latency_ns.items() if p not in skip for x in xs]


class CrashControl:
    """Pairs whose strategy raises once on the next live tick, and when things happened."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.armed: set[str] = set()
        self.watch: frozenset[str] = frozenset()
        """Pairs armed or not yet recovered: the only ones ``note_tick`` is called for."""
        self.crashed_ns: dict[str, int] = {}
        self.recovered_ns: dict[str, int] = {}
        """Per crashed pair: wall time its next generation's first live tick reached it."""
        self.recovered_recv_ns: dict[str, int] = {}
        self.recovered = threading.Condition(self._lock)

    def arm(self, pair: str) -> None:
        with self._lock:
            self.crashed_ns.pop(pair, None)
            self.recovered_ns.pop(pair, None)
            self.armed.add(pair)
            self.watch = self.watch | {pair}

    def wait_recovered(self, pair: str, timeout: float) -> bool:
        with self.recovered:
            return self.recovered.wait_for(lambda: pair in self.recovered_ns, timeout)

    def note_tick(self, pair: str, recv_ns: int, now_ns: int) -> bool:
        """Called on every live tick of a probed pair; True means: raise now."""
        with self._lock:
            if pair in self.armed:
                self.armed.discard(pair)
                self.crashed_ns[pair] = now_ns
                return True
            if pair in self.crashed_ns and pair not in self.recovered_ns:
                self.recovered_ns[pair] = now_ns
                self.recovered_recv_ns[pair] = recv_ns
                self.watch = self.watch - {pair}
                self.recovered.notify_all()
        return False


class BurnControl:
    """Pairs that burn CPU in pure Python on every live tick: pair -> seconds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.loops_per_second = 0.0

    def calibrate(self) -> float:
        """Iterations of ``spin`` per second on this machine, measured alone."""
        n = 200_000
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            spin(n)
            best = min(best, time.perf_counter() - t0)
        self.loops_per_second = n / best
        return self.loops_per_second


def spin(n: int) -> int:
    """A pure-Python loop that holds the GIL (no I/O, no C calls that release it)."""
    acc = 0
    for i in range(n):
        acc = (acc + i * i) & 0xFFFF
    return acc


PROBE = Probe()
CRASH = CrashControl()
BURN = BurnControl()


class ProbedEmaCross(EmaCross):
    """``ema_cross`` plus the probes above; with every control off it adds three attribute
    reads per tick (1,000 pairs at 20 ticks/s: the probe's clock and checks were about 2 % of
    the process's time)."""

    name = "probed_ema_cross"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._live = True

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        self._live = False
        try:
            super().warm_up(ticks)
        finally:
            self._live = True

    def on_tick(self, tick: MarketTick) -> Signal:
        probe = PROBE
        if not (probe.enabled or CRASH.watch or BURN.seconds):
            return super().on_tick(tick)  # every control off: the strategy alone
        now = _perf_ns()
        recv = tick.recv_ns
        if not (self._live and recv):
            return super().on_tick(tick)
        pair = tick.pair
        if probe.enabled and tick.ts_ms >= probe.measure_from_ms:
            series = probe.latency_ns.get(pair)
            if series is not None:
                series.append(now - recv)
            if pair not in probe.first_tick_ns:
                probe.first_tick_ns[pair] = now
        if pair in CRASH.watch and CRASH.note_tick(pair, recv, now):
            raise RuntimeError(f"bench: {pair} strategy crashes once on purpose")
        burn = BURN.seconds.get(pair) if BURN.seconds else None
        if burn:
            spin(int(burn * BURN.loops_per_second))
        signal = super().on_tick(tick)
        if signal is not _HOLD and probe.enabled:
            probe.signal_recv_ns[(pair, tick.ts_ms)] = recv
        return signal
