"""Where messages go: stable addresses in front of actors that come and go.

A pair's orchestrator is replaced on every restart, so nobody keeps its ``ActorRef``. They
send to the pair's address and the ``Router`` looks up the ``PairHandle``, a small thread-safe
object that holds the current ref, its generation, the pair's lifecycle and the figures the
status table shows. The feed thread, every actor and the embedding thread use it at once: the
only writes are single attribute assignments (atomic under the GIL), made by one owner each.

Ticks are the one message that can outrun a consumer, so each pair has credits: the feed
takes one per tick and the orchestrator returns it when it has processed the tick. A replay
at full speed waits for a credit (backpressure, nothing lost); a live feed sheds the tick
(counted: a pair only needs the latest price to decide). Orders, fills and state updates are
never shed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka
from loguru import logger

from actors.messages import EVENTS, MarketTick, StrategySpec

EventCallback = Callable[[object], None]


class PairHandle:
    """The stable face of one pair."""

    __slots__ = (
        "_credits",
        "generation",
        "last_error",
        "last_latency_ns",
        "last_price",
        "last_ts_ms",
        "max_inflight",
        "pair",
        "paused",
        "ref",
        "restarts",
        "shed",
        "spec",
        "state",
        "strategy",
        "ticks",
    )

    def __init__(self, pair: str, max_inflight: int) -> None:
        self.pair = pair
        self.ref: pykka.ActorRef[Any] | None = None
        self.generation = 0
        self.state = "starting"
        self.paused = False
        self.restarts = 0
        self.last_error = ""
        self.strategy = ""
        self.spec: StrategySpec | None = None
        self.ticks = 0
        self.shed = 0
        self.last_price = 0.0
        self.last_ts_ms = 0
        self.last_latency_ns = 0
        self.max_inflight = max_inflight
        self._credits = threading.Semaphore(max_inflight)

    def attach(self, ref: pykka.ActorRef[Any], generation: int) -> None:
        """Point the pair at a new actor. Credits start afresh: the old inbox is gone."""
        self._credits = threading.Semaphore(self.max_inflight)
        self.generation = generation
        self.ref = ref

    def detach(self) -> None:
        self.ref = None

    def take_credit(self, block: bool, stop: threading.Event) -> bool:
        """A slot for one more tick in the pair's inbox; see the module docstring."""
        pool = self._credits
        if not block:
            return pool.acquire(blocking=False)
        while not stop.is_set():
            if pool.acquire(timeout=0.2):
                return True
            if self.ref is None or self.state in ("failed", "stopped"):
                return False
        return False

    def return_credit(self) -> None:
        self._credits.release()

    def processed(self, tick: MarketTick, now_ns: int, generation: int) -> None:
        """Record a processed tick; called by the pair's actor only. A replaced actor that
        wakes up is ignored: it must not hand out credits of its successor's inbox."""
        if generation != self.generation:
            return
        self.ticks += 1
        self.last_price = tick.price
        self.last_ts_ms = tick.ts_ms
        if tick.recv_ns:
            self.last_latency_ns = now_ns - tick.recv_ns
        self._credits.release()


class Router:
    """Addresses -> actors. Services are registered once, pairs through their handles."""

    def __init__(self) -> None:
        self.services: dict[str, pykka.ActorRef[Any]] = {}
        self.pairs: dict[str, PairHandle] = {}
        self._subscribers: tuple[EventCallback, ...] = ()
        self._lock = threading.Lock()
        self.undeliverable = 0

    def add_pair(self, pair: str, max_inflight: int) -> PairHandle:
        handle = PairHandle(pair, max_inflight)
        self.pairs = {**self.pairs, pair: handle}
        return handle

    def remove_pair(self, pair: str) -> None:
        self.pairs = {p: h for p, h in self.pairs.items() if p != pair}

    def tell(self, to: str, message: object) -> None:
        """Deliver without blocking; a message to a pair that is restarting is counted and
        dropped (the restarted pair asks the state actor for its book anyway)."""
        if to == EVENTS:
            self.publish(message)
            return
        ref = self.services.get(to)
        if ref is None:
            handle = self.pairs.get(to)
            ref = handle.ref if handle is not None else None
        if ref is None:
            self.undeliverable += 1
            return
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            self.undeliverable += 1

    # -- events for the world outside the actors ------------------------------------------

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; it runs on the sender's thread, so it must
        be quick and must not call back into the system synchronously."""
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def publish(self, event: object) -> None:
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a subscriber's bug must not kill the publisher
                logger.exception("event subscriber {!r} failed on {}", callback,
                                 type(event).__name__)
