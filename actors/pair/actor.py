"""One pair's actor: the shell around ``TradingOrchestrator``.

Runs on a worker of the ``PairPool`` (``actors.pair.pool``), or on a thread of its own where
``pair_workers`` is 0; either way a pair that crashes or stalls takes only itself down. The
supervisor asks the state actor for the pair's book once the new actor is reachable (a tell,
never a blocking ask); the core trades only once the book has arrived. Ticks arrive in the
pair's ``TickInbox`` (``actors.router``), announced by a ``TicksReady``; each processed tick
updates the handle's figures. While the pair waits for the answer to its own order it leaves
new ticks in the inbox (see ``TradingOrchestrator.awaiting``), so a replay at full speed
decides exactly as the threadless runtime does; the answer, like any message, resumes the
drain. If that answer never comes (lost while another actor restarted),
the watchdog's heartbeat is the pair's clock: a ``Ping`` that finds ticks held
``hold_limit_s`` without progress makes the pair decide again. No timer thread per hold: with
200 busy pairs that was about 900 thread starts a second. On a crash ``on_failure`` reports to
the supervisor, which starts a new generation behind the same handle. Whether the actor stops
or crashes, its strategy is closed (an isolated strategy's process is killed and reaped).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import attrs
from loguru import logger

from actors.messages import (
    STATE,
    Envelope,
    MarketTick,
    MarkPrices,
    Ping,
    PositionChanged,
    Query,
    RaisePeak,
    StrategySwapped,
)
from actors.pair.orchestrator import TradingOrchestrator, close_strategy
from actors.pair.pool import TURN_S, PairPool, PooledActor
from actors.router import READY_ENVELOPE, TICKS_READY, PairHandle, Router, TickInbox
from actors.shell import CoreActor

HOLD_LIMIT_S = 5.0
"""Wall time without progress after which a pair stops waiting for its order's answer (checked
at each heartbeat, so it acts within one heartbeat interval after that)."""
DRAIN_TICKS = 256
"""Most ticks taken per turn before the pykka inbox (answers, heartbeats) is looked at."""


class OrchestratorActor(PooledActor, CoreActor):
    core: TradingOrchestrator
    # A hung strategy's thread can never be joined; it must not keep the process alive
    # after stop(). The generation fence makes it harmless meanwhile.
    use_daemon_thread = True

    def __init__(self, core: TradingOrchestrator, router: Router, handle: PairHandle,
                 inbox: TickInbox, *, hold_limit_s: float | None = None,
                 pool: PairPool | None = None) -> None:
        self.pool = pool  # first: pykka's __init__ builds the inbox, which depends on it
        self.thread_name = f"OrchestratorActor[{core.pair}]"
        super().__init__(core, router, core.generation)
        self.name = core.pair
        self.handle = handle
        self.inbox = inbox
        self.hold_limit_s = HOLD_LIMIT_S if hold_limit_s is None else hold_limit_s
        self.holding = False
        """The first tick in the inbox waits for an order's answer."""
        self._progress_at = 0.0
        self._held_mark: MarkPrices | None = None
        """A mark not sent because state has not read the previous one (see ``_pace_mark``)."""

    def on_start(self) -> None:
        threading.current_thread().name = self.thread_name  # for logs
        self.handle.mark_unread = False  # a predecessor's mark may be lost with it
        self._show_strategy()

    def release(self) -> None:
        # An isolated strategy's process goes with its pair, on a stop or a crash alike (the
        # supervisor builds a new one).
        close_strategy(self.core.strategy)

    doorbell = READY_ENVELOPE  # on the pool, a tick's ring calls on_doorbell directly

    def on_doorbell(self) -> None:
        self._drain()

    def on_receive(self, message: Any) -> Any:
        if message is TICKS_READY:  # the hot path on a thread of its own
            self._drain()
            return None
        if isinstance(message, Ping):
            if self.holding and time.monotonic() - self._progress_at >= self.hold_limit_s:
                self._hold_expired()
            return message
        if isinstance(message, Query):
            return super().on_receive(message)
        out = self.core.handle(message)
        if type(message) is PositionChanged and message.book.position is None:
            self.handle.exit_requested = False  # an exit by hand ends with the position
        for envelope in out:
            if isinstance(envelope.message, StrategySwapped):
                self._report_swap(envelope.message)
        self.send(out)
        if self.inbox:
            self._drain()
        return None

    def _drain(self) -> None:
        """Process waiting ticks in order until the inbox is empty or the pair waits on an
        order. A held tick stays in the inbox, so the inbox stays bounded. After
        ``DRAIN_TICKS``, or ``TURN_S`` of a slow strategy, the pair rings itself and lets its
        pykka inbox, and on the pool the other pairs, go first."""
        inbox, core, process, clock = self.inbox, self.core, self._process, time.monotonic
        ends = clock() + TURN_S
        for _ in range(DRAIN_TICKS):
            if not inbox:
                return
            tick = inbox.first()
            if core.awaiting():
                if not self.holding:
                    self.holding = True
                    self._progress_at = clock()
                return
            self.holding = False
            inbox.pop()
            process(tick)
            if clock() >= ends:
                break
        if inbox:
            self.actor_ref.tell(TICKS_READY)

    def _process(self, tick: MarketTick) -> None:
        out = self.core.process_market_tick(tick)
        if out:
            if any(type(e.message) is RaisePeak for e in out):
                out = self._peak_on_mark(out, tick)
            if type(out[0].message) is MarkPrices:  # a mark always comes first
                out = self._pace_mark(out)
            self.send(out)
        elif self._held_mark is not None and not self.handle.mark_unread:
            self.send(self._pace_mark([Envelope(STATE, self._held_mark)]))
        self.handle.processed(tick, time.perf_counter_ns(), self.generation)

    def _peak_on_mark(self, out: list[Envelope], tick: MarketTick) -> list[Envelope]:
        """A trailing peak rides on this tick's mark (one is made for it where the tick has
        none), so that it is paced like marks: in a long rise at full speed every tick can
        raise the peak, and one ``RaisePeak`` each could pile up in state's inbox as marks
        once did. State stores a mark's peaks as it stores ``RaisePeak``."""
        peaks = tuple((e.message.pair, e.message.price) for e in out  # type: ignore[attr-defined]
                      if type(e.message) is RaisePeak)
        rest = [e for e in out if type(e.message) is not RaisePeak]
        if rest and type(rest[0].message) is MarkPrices:
            mark: MarkPrices = with_peaks(rest.pop(0).message, peaks)  # type: ignore[arg-type]
        else:
            mark = MarkPrices(ts_ms=tick.ts_ms, marks=((self.core.pair, tick.price),),
                              generation=self.generation, peaks=peaks)
        return [Envelope(STATE, mark), *rest]

    def _pace_mark(self, out: list[Envelope]) -> list[Envelope]:
        """At most one mark of this pair waits in the state actor's inbox. A replay of coarse
        data (hourly candles: every tick a market hour) at full speed marks on every tick,
        faster than state books them: its inbox grew without bound, until the watchdog's
        heartbeat waited behind it for 5 s and took state for hung. A mark made meanwhile
        is held, merged with the next (the latest price, every peak), and sent once state
        has read the previous one."""
        mark: MarkPrices = out[0].message  # type: ignore[assignment]
        held = self._held_mark
        if held is not None and held is not mark:
            mark = with_peaks(mark, held.peaks)  # held marks only: rare
        if self.handle.mark_unread:
            self._held_mark = mark
            return out[1:]
        self._held_mark = None
        self.handle.mark_unread = True
        return [Envelope(STATE, mark), *out[1:]]

    def _hold_expired(self) -> None:
        logger.warning("{}: no answer to its order within {} s; deciding again",
                       self.core.pair, self.hold_limit_s)
        self.core.stop_waiting()
        self.holding = False
        self._drain()

    def _report_swap(self, swapped: StrategySwapped) -> None:
        if swapped.error:
            logger.warning("{}: strategy swap refused, keeping {}: {}", self.core.pair,
                           self.core.strategy.describe(), swapped.error)
        else:
            logger.info("{}: now trading {}", self.core.pair, swapped.description)
            self._show_strategy()

    def _show_strategy(self) -> None:
        self.handle.strategy = self.core.strategy.describe()
        self.handle.spec = self.core.spec


def with_peaks(mark: MarkPrices, peaks: tuple[tuple[str, float], ...]) -> MarkPrices:
    """``mark`` carrying ``peaks`` as well, one per pair: peaks only rise, so the higher of
    two for a pair is kept."""
    if not peaks:
        return mark
    merged = dict(peaks)
    for pair, price in mark.peaks:
        merged[pair] = max(price, merged.get(pair, price))
    return attrs.evolve(mark, peaks=tuple(merged.items()))
