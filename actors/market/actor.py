"""The market data actor: runs the feed and keeps the latest prices and a history ring.

The feed (simulator, CSV replay, or any iterable of ticks) runs on a thread this actor owns,
because pacing means waiting and an actor must never wait inside a message. Per tick the feed
thread validates it (``MarketDataCore.accept`` drops and counts bad ones), forwards it to the
execution actor if a limit order rests on that pair, then to the pair under the pair's tick
credits, into its tick inbox (``actors.router.TickInbox``). The actor's own thread answers
history queries. If the feed thread dies, the actor reports it to the supervisor like any
crash.

A live exchange feed (``live=True``) is never paced, whatever ``speed`` says: its ticks come in
real time, and a pair out of credits sheds them rather than holding the feed up. Such a source
blocks waiting for data, so ``close_source`` is called on stop to end it at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
from loguru import logger

from actors.market.core import MarketDataCore
from actors.market.pacer import Pacer
from actors.messages import (
    EXECUTION,
    MARKET_DATA,
    SUPERVISOR,
    ChildFailed,
    FeedEnded,
    GetHistory,
    MarketTick,
    Ping,
)
from actors.router import Router
from actors.shell import CoreActor

PACE_SLACK_S = 0.0005
"""A paced tick due sooner than this goes out at once: 200 pairs at 20 ticks/s are due every
0.25 ms, and a timed wait per tick cost the feed thread more CPU than the ticks themselves."""


@attrs.frozen(kw_only=True)
class StartFeed:
    """Supervisor -> market data: every pair is up, start delivering."""


class MarketDataActor(CoreActor):
    name = MARKET_DATA
    core: MarketDataCore

    def __init__(
        self,
        core: MarketDataCore,
        router: Router,
        source: Iterable[MarketTick],
        speed: float,
        tick_pairs: Callable[[], frozenset[str]],
        *,
        live: bool = False,
        close_source: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(core, router)  # type: ignore[arg-type]
        self.source = source
        self.speed = speed
        self.tick_pairs = tick_pairs
        self.live = live
        """Real-time data from an exchange: never paced (``speed`` is ignored), and a pair
        without credits sheds ticks rather than holding the feed up."""
        self.close_source = close_source
        """Ends a source that blocks waiting for data (a live feed), so that stopping does
        not wait for its next tick."""
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def on_receive(self, message: Any) -> Any:
        match message:
            case StartFeed():
                self._start_thread()
            case GetHistory(pair=pair, limit=limit):
                return self.core.history(pair, limit)
            case Ping():
                return message
            case _:
                logger.warning("market data: unexpected message {!r}", message)
                self.unknown_messages += 1
        return None

    def release(self) -> None:
        """The feed thread (and a live feed's event loop) ends with the actor."""
        self.stop_event.set()
        if self.close_source is not None:
            self.close_source()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="feed", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            ticks, last_ts = self.pump(iter(self.source))
        except Exception as exc:  # noqa: BLE001 - any feed failure is reported, not lost
            logger.exception("feed thread crashed")
            self.router.tell(SUPERVISOR, ChildFailed(name=MARKET_DATA, generation=0,
                                                     error=repr(exc)))
            return
        if not self.stop_event.is_set():
            logger.info("feed ended after {} ticks", ticks)
            self.router.tell(SUPERVISOR, FeedEnded(ts_ms=last_ts, ticks=ticks))

    def pump(self, source: Iterator[MarketTick]) -> tuple[int, int]:
        """Deliver ticks until the source ends or the actor stops; returns (count, last ts)."""
        core, router, stop = self.core, self.router, self.stop_event
        pacer = Pacer(self.speed)
        paced = not (self.live or math.isinf(self.speed))
        # Replay at full speed waits for credits; paced and live feeds shed. Its ticks wait
        # in the pairs' inboxes by design, so their latency says nothing: they are not
        # stamped (a tick with recv_ns 0 is not timed), which saves building each tick twice.
        block = math.isinf(self.speed) and not self.live
        pairs = router.pairs
        count = last_ts = 0
        perf_ns = time.perf_counter_ns
        for raw in source:
            if stop.is_set():
                break
            if paced:
                delay = pacer.delay_for(raw.ts_ms)
                if delay >= PACE_SLACK_S and stop.wait(delay):
                    break
            tick = raw if block else raw.stamped(perf_ns())
            if not core.accept(tick):
                continue
            count += 1
            last_ts = tick.ts_ms
            pair = tick.pair
            if pair in self.tick_pairs():
                router.tell(EXECUTION, tick)
            if router.pairs is not pairs:
                pairs = router.pairs
            handle = pairs.get(pair)
            if (handle is not None and handle.ref is not None
                    and not handle.deliver(tick, block, stop)):
                handle.shed += 1
        return count, last_ts
