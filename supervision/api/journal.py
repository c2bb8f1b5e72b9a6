"""``EventJournal``: every event worth showing, numbered, with the last few kept for replay.

The router calls ``record`` on the publishing actor's thread, so it does only what must happen
there: a type lookup, a sequence number and a ring append under a short lock, then a wake-up
call to each listener (the API's event stream coalesces those into one hand-over to its own
loop). Formatting and sending happen on the listener's thread. A client that falls further
behind than the ring holds is told how many events it missed; nothing ever waits for it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from actors.messages import (
    AuditRecord,
    FeedStale,
    HaltChanged,
    OrderFilled,
    OrderRejected,
    OrderUpdated,
    PairAdded,
    PairFailed,
    PairRemoved,
    PairRestarted,
    PositionClosed,
    ServiceRestarted,
    SignalRaised,
    StrategyRolledBack,
    StrategySwapped,
    SystemFailed,
)

KINDS: dict[type, str] = {
    OrderFilled: "fill", OrderUpdated: "order", PositionClosed: "trade",
    OrderRejected: "rejected", SignalRaised: "signal", StrategySwapped: "swap",
    StrategyRolledBack: "rollback", PairRestarted: "restart",
    ServiceRestarted: "service_restarted", PairFailed: "pair_failed", PairAdded: "pair_added",
    PairRemoved: "pair_removed", HaltChanged: "halt", FeedStale: "stale",
    SystemFailed: "failure", AuditRecord: "audit",
}
"""The events the journal keeps, by the name clients see (``supervision.config.notify``'s
``EVENT_KINDS``)."""

Entry = tuple[int, object]


def kind_of(event: object) -> str | None:
    return KINDS.get(type(event))


def level_of(event: object) -> str:
    """How much a person should care: ``debug``, ``info``, ``warning`` or ``critical``."""
    match event:
        case OrderUpdated() | OrderRejected() | SignalRaised():
            return "debug"
        case PairFailed() | SystemFailed():
            return "critical"
        case HaltChanged(halted=halted):
            return "critical" if halted else "info"
        case FeedStale(stale=stale):
            return "warning" if stale else "info"
        case StrategySwapped(error=error):
            return "warning" if error else "info"
        case PairRestarted() | ServiceRestarted() | StrategyRolledBack():
            return "warning"
    return "info"


class EventJournal:
    """Numbers events from 1 and keeps the last ``capacity`` of them."""

    def __init__(self, capacity: int = 1000) -> None:
        self._ring: deque[Entry] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()
        self._listeners: tuple[Callable[[int, object], None], ...] = ()

    def record(self, event: object) -> None:
        """Subscriber: keep ``event`` if it is of a kind clients see, then wake listeners."""
        if type(event) not in KINDS:
            return
        with self._lock:
            self._seq = seq = self._seq + 1
            self._ring.append((seq, event))
        for wake in self._listeners:
            wake(seq, event)

    def extend(self, entries: list[Entry]) -> None:
        """Keep events numbered elsewhere (the trading process's journal, in the API's),
        then wake listeners."""
        with self._lock:
            self._ring.extend(entries)
            self._seq = entries[-1][0] if entries else self._seq
        for seq, event in entries:
            for wake in self._listeners:
                wake(seq, event)

    @property
    def last_seq(self) -> int:
        return self._seq

    def since(self, after: int, limit: int | None = None) -> tuple[list[Entry], int]:
        """The kept events numbered above ``after``, oldest first (at most ``limit``), and how
        many after ``after`` are no longer kept (missed)."""
        with self._lock:
            entries = list(self._ring)
            last = self._seq
        first = entries[0][0] if entries else last + 1
        missed = max(0, min(first, last + 1) - after - 1)
        start = max(0, after + 1 - first)
        out = entries[start:]
        return (out if limit is None else out[:limit]), missed

    def listen(self, wake: Callable[[int, object], None]) -> Callable[[], None]:
        """Call ``wake(seq, event)`` (on the publisher's thread: it must be quick) after every
        kept event;
        returns a function that stops it."""
        with self._lock:
            self._listeners = (*self._listeners, wake)

        def stop() -> None:
            with self._lock:
                self._listeners = tuple(w for w in self._listeners if w is not wake)

        return stop
