"""The event stream: server-sent events from the ``EventJournal``, plus live status snapshots.

Runs on the API server's event loop. The journal wakes ``EventStream`` from the publishing
actor's thread; one wake-up is handed to the loop however many events arrive meanwhile
(``call_soon_threadsafe`` once), and each client then reads the journal from its own position.
So a slow client holds no queue: if it falls further behind than the journal keeps, it gets a
``gap`` event saying how many it missed, and nothing upstream ever waits for it.

Wire format (``text/event-stream``): each event is ``id: <seq>``, ``event: <kind>`` and one
``data:`` line of JSON ``{"seq", "kind", "level", "text", "event"}``. A client that reconnects
with ``Last-Event-ID`` (or ``?after=SEQ``) gets what it missed; ``?last=N`` replays the last
N. A ``hello`` comes first (the run and the last sequence number), a ``status`` snapshot
every ``status_interval_s`` while clients listen (and soon after a fill), and a comment line
every 15 s keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from loguru import logger

from actors.messages import AuditRecord, FeedStale, OrderFilled, SystemFailed
from supervision.api.journal import EventJournal, kind_of, level_of
from supervision.api.queries import jsonable

KEEPALIVE_S = 15.0
BATCH = 500
"""Most events one client takes per turn before the loop serves others."""
ENCODED_KEPT = 4 * BATCH
"""How many entries stay encoded for the clients that read them next."""
STATUS_AFTER_FILL_S = 0.1
WAKE_EVERY_S = 0.05
"""Events that arrive within this of each other reach the clients in one turn, not a turn
per event and client (50 pairs trading and 20 clients: up to 1,500 turns a second, each a
slice of the GIL the pairs wait for)."""


def event_json(seq: int, event: object) -> dict[str, Any]:
    """One journal entry as the stream and the webhook show it."""
    kind = kind_of(event) or type(event).__name__
    return {"seq": seq, "kind": kind, "level": level_of(event), "text": describe(event) or kind,
            "event": jsonable(event)}


def describe(event: object) -> str | None:
    """One line for a person: the CLI's wording, and the events the CLI logs elsewhere."""
    from supervision.app import describe_event

    match event:
        case FeedStale(stale=True):
            return f"stale    {event.pair}: no market data for {event.age_s:.0f} s"
        case FeedStale():
            return f"fresh    {event.pair}: market data is back after {event.age_s:.0f} s"
        case SystemFailed():
            return f"FAILED   the system is stopping: {event.reason}"
        case AuditRecord():
            return (f"by hand  {event.actor}: {event.action} {event.target} {event.detail}"
                    f" -> {event.outcome}").replace("  -", " -")
    return describe_event(event)


def sse(data: dict[str, Any] | str, *, event: str = "", seq: int | None = None) -> str:
    body = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = (f"id: {seq}\n" if seq is not None else "") + (f"event: {event}\n" if event else "")
    return f"{head}data: {body}\n\n"


class _Client:
    __slots__ = ("status", "wake")

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.status: str | None = None


class EventStream:
    """Every stream client of one server. Created on, and used from, the server's loop,
    except ``wake`` (any thread)."""

    def __init__(self, journal: EventJournal, status: Callable[[], dict[str, Any]],
                 hello: dict[str, Any], *, status_interval_s: float = 1.0,
                 on_clients: Callable[[int], None] = lambda n: None) -> None:
        self.journal = journal
        self.status = status
        self.hello = hello
        self.status_interval_s = status_interval_s
        self.on_clients = on_clients
        self.clients: set[_Client] = set()
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_pending = False
        self._fill_seen = False
        self._status_due = asyncio.Event()
        self._stop_listening: Callable[[], None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._encoded: dict[int, str] = {}
        self._last_snapshot: object = None

    def open(self) -> None:
        """On the loop: start listening to the journal and sending snapshots."""
        self._loop = asyncio.get_running_loop()
        self._stop_listening = self.journal.listen(self.wake)
        self._ticker = asyncio.ensure_future(self._send_status())

    def wake(self, _seq: int, event: object) -> None:
        """On the publisher's thread: hand one wake-up to the loop (a flag read and set are
        atomic under the GIL; a spare wake-up is harmless, a lost one is not possible since
        the flag is cleared on the loop before the clients read)."""
        if type(event) is OrderFilled:
            self._fill_seen = True
        if self._wake_pending or self._loop is None or not self.clients:
            return
        self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._loop.call_later, WAKE_EVERY_S,
                                            self._wake_clients)
        except RuntimeError:  # the loop closed meanwhile
            self._wake_pending = False

    def _wake_clients(self) -> None:
        self._wake_pending = False
        for client in self.clients:
            client.wake.set()
        if self._fill_seen and self._loop is not None:
            # Positions changed: the next snapshot comes sooner than its interval.
            self._fill_seen = False
            self._loop.call_later(STATUS_AFTER_FILL_S, self._status_due.set)

    async def _send_status(self) -> None:
        """While clients listen: a status snapshot every interval, or soon after a fill.
        One snapshot serves every client; it is built on a worker thread (it asks actors)."""
        loop = asyncio.get_running_loop()
        while not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_due.wait(), self.status_interval_s)
            self._status_due.clear()
            if not self.clients or self.closed:
                continue
            try:
                snapshot = await loop.run_in_executor(None, self.status)
            except Exception as exc:  # noqa: BLE001 - a busy or stopping system: skip one
                logger.debug("status snapshot for the event stream skipped: {!r}", exc)
                continue
            if snapshot is self._last_snapshot:
                continue  # the same build (``ApiService._status`` keeps one a while): sent
            self._last_snapshot = snapshot
            text = sse(snapshot, event="status")
            for client in self.clients:
                client.status = text
                client.wake.set()

    def close(self) -> None:
        """On the loop: end every stream (the server is stopping)."""
        self.closed = True
        if self._stop_listening is not None:
            self._stop_listening()
        if self._ticker is not None:
            self._ticker.cancel()
        for client in self.clients:
            client.wake.set()

    def start_after(self, after: int | None, last: int | None) -> int:
        """Where a new client starts: after its last seen event, or ``last`` from the end,
        or from now. A number beyond this run's (a client of an earlier run) starts over."""
        newest = self.journal.last_seq
        if after is not None:
            return after if after <= newest else 0
        if last is not None:
            return max(0, newest - last)
        return newest

    def _encode(self, seq: int, event: object) -> str:
        """One entry as its SSE text, encoded once for every client rather than once per
        client (each an encoding the pairs wait for under the GIL). On the loop only."""
        text = self._encoded.get(seq)
        if text is None:
            data = event_json(seq, event)
            text = self._encoded[seq] = sse(data, event=data["kind"], seq=seq)
            if len(self._encoded) > ENCODED_KEPT:
                del self._encoded[next(iter(self._encoded))]
        return text

    async def stream(self, after: int) -> AsyncIterator[str]:
        """One client's events, from ``after`` on, until the server stops or it leaves;
        what one turn found goes out in one write."""
        client = _Client()
        self.clients.add(client)
        self.on_clients(len(self.clients))
        try:
            yield sse({**self.hello, "last_seq": self.journal.last_seq, "from": after},
                      event="hello")
            while not self.closed:
                client.wake.clear()
                entries, missed = self.journal.since(after, BATCH)
                chunks = [sse({"missed": missed, "after": after}, event="gap")] if missed else []
                for seq, event in entries:
                    chunks.append(self._encode(seq, event))
                    after = seq
                if client.status is not None:
                    chunks.append(client.status)
                    client.status = None
                if chunks:
                    yield "".join(chunks)
                if entries or missed or self.journal.last_seq > after:
                    continue
                try:
                    await asyncio.wait_for(client.wake.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            self.clients.discard(client)
            self.on_clients(len(self.clients))
