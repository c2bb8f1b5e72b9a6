"""One pair's actor: the shell around ``TradingOrchestrator``.

Runs on its own pykka thread, so a pair that crashes or stalls takes only itself down. The
supervisor asks the state actor for the pair's book once the new actor is reachable (a tell,
never a blocking ask); the core trades only once the book has arrived. Each processed tick
returns a credit to the pair's handle and updates its figures. While the pair waits for the
answer to its own order it holds new ticks back (see ``TradingOrchestrator.awaiting``), so a
replay at full speed decides exactly as the threadless runtime does. If that answer never comes
(lost while another actor restarted), the watchdog's heartbeat is the pair's clock: a ``Ping``
that finds ticks held ``hold_limit_s`` without progress makes the pair decide again. No timer
thread per hold: with 200 busy pairs that was about 900 thread starts a second. On a crash
``on_failure`` reports to the supervisor, which starts a new generation behind the same
handle. Whether the actor stops or crashes, its strategy is closed (an isolated strategy's
process is killed and reaped).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from loguru import logger

from actors.messages import MarketTick, Ping, Query, StrategySwapped
from actors.orchestrator_core import TradingOrchestrator, close_strategy
from actors.router import PairHandle, Router
from actors.shell import CoreActor

HOLD_LIMIT_S = 5.0
"""Wall time without progress after which a pair stops waiting for its order's answer (checked
at each heartbeat, so it acts within one heartbeat interval after that)."""


class OrchestratorActor(CoreActor):
    core: TradingOrchestrator
    # A hung strategy's thread can never be joined; it must not keep the process alive
    # after stop(). The generation fence makes it harmless meanwhile.
    use_daemon_thread = True

    def __init__(self, core: TradingOrchestrator, router: Router, handle: PairHandle,
                 hold_limit_s: float | None = None) -> None:
        super().__init__(core, router, core.generation)
        self.name = core.pair
        self.handle = handle
        self.stash: deque[MarketTick] = deque()
        self.hold_limit_s = HOLD_LIMIT_S if hold_limit_s is None else hold_limit_s
        self._progress_at = 0.0

    def on_start(self) -> None:
        threading.current_thread().name = f"OrchestratorActor[{self.core.pair}]"  # for logs
        self._show_strategy()

    def release(self) -> None:
        # An isolated strategy's process goes with its pair, on a stop or a crash alike (the
        # supervisor builds a new one).
        close_strategy(self.core.strategy)

    def on_receive(self, message: Any) -> Any:
        if type(message) is MarketTick:
            # The hot path: one check, then the core.
            if self.stash or self.core.awaiting(message.ts_ms):
                self._hold(message)
            else:
                self._process(message)
            return None
        if isinstance(message, Ping):
            if self.stash and time.monotonic() - self._progress_at >= self.hold_limit_s:
                self._hold_expired()
            return message
        if isinstance(message, Query):
            return super().on_receive(message)
        out = self.core.handle(message)
        for envelope in out:
            if isinstance(envelope.message, StrategySwapped):
                self._report_swap(envelope.message)
        self.send(out)
        if self.stash:
            self._drain_stash()
        return None

    def _process(self, tick: MarketTick) -> None:
        out = self.core.process_market_tick(tick)
        if out:
            self.send(out)
        self.handle.processed(tick, time.perf_counter_ns(), self.generation)

    def _hold(self, tick: MarketTick) -> None:
        """Keep a tick until the pair's order is answered. The stash is bounded: a held tick
        keeps its credit until processed. Progress (any held tick processed) restarts the
        hold clock: a busy replay can keep ticks held across many answered orders, and that
        is not a lost answer."""
        if not self.stash:
            self._progress_at = time.monotonic()
        self.stash.append(tick)
        self._drain_stash()

    def _hold_expired(self) -> None:
        logger.warning("{}: no answer to its order within {} s; deciding again",
                       self.core.pair, self.hold_limit_s)
        self.core.stop_waiting()
        self._drain_stash()

    def _drain_stash(self) -> None:
        """Process held ticks in order until the pair waits on an order again."""
        stash = self.stash
        if stash and not self.core.awaiting(stash[0].ts_ms):
            self._progress_at = time.monotonic()
        while stash and not self.core.awaiting(stash[0].ts_ms):
            self._process(stash.popleft())

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
