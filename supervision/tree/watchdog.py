"""Hang detection: every child must answer a heartbeat in time, or it is reported as hung.

A thread of its own (not an actor: it keeps state between rounds and sleeps) sends each pair
and each shared actor a ``Ping`` (``ping``: an ask without a future), once per ``interval_s``,
in slices of at most ``SLICE_PINGS`` spread over the interval (see there).
A child whose reply is older than ``timeout_s`` is reported to the supervisor as a
``ChildFailed`` with the generation it was pinged under, exactly like a crash; the supervisor
replaces a pair and escalates for a shared actor. A Python thread cannot be killed: the hung
thread stays blocked, and if it ever wakes up, generation fencing makes it harmless.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka
from loguru import logger
from pykka._envelope import Envelope  # a ping with a reply slot, not a future (see ping)

from actors.messages import SUPERVISOR, ChildFailed, Ping
from actors.router import Router

SLICE_PINGS = 20
"""Children pinged at once. A round is spread over the interval in slices this big: 1,000
pairs pinged together were 1,000 asks and turns (about 40 ms under the GIL) once a second,
and the ticks that arrived meanwhile waited for them: at 1,000 pairs x 20 ticks/s the tick
p99 was 1.9-2.7 ms with the burst and 0.75 ms without it (``bench.fleet``, no orders)."""


@attrs.define
class _Probe:
    generation: int
    sent_at: float
    reply: HeartbeatReply


class HeartbeatReply:
    """Where a child's answer to a ``Ping`` lands: the two calls pykka's actor loops (and the
    pair pool's) make on an envelope's ``reply_to``, and a flag. A pykka future for each ping
    is a queue with three conditions, and reading it without waiting raises and catches a
    timeout: a ping and its check took 12.5 µs of CPU that way and take 3.5 µs this way (1,000
    pooled actors; a thousand pings a second at 1,000 pairs)."""

    __slots__ = ("answered",)

    def __init__(self) -> None:
        self.answered = False

    def set(self, value: Any = None) -> None:
        self.answered = True

    def set_exception(self, exc_info: Any = None) -> None:
        """Answered with an error (a dead actor's queued ping among them): not hung."""
        self.answered = True


_PING = Ping()


def ping(ref: pykka.ActorRef[Any]) -> HeartbeatReply:
    """Ask ``ref`` a ``Ping`` without a future (see ``HeartbeatReply``); raises
    ``pykka.ActorDeadError`` for a dead actor, as ``ask`` does."""
    if not ref.is_alive():
        raise pykka.ActorDeadError(f"{ref} not found")
    reply = HeartbeatReply()
    ref.actor_inbox.put(Envelope(_PING, reply_to=reply))  # type: ignore[arg-type]
    return reply


class Watchdog:
    """Pings the children behind ``router``; ``sweep`` is one round, ``start`` runs rounds."""

    def __init__(self, router: Router, interval_s: float = 1.0, timeout_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.router = router
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._probes: dict[str, _Probe] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def children(self) -> list[tuple[str, pykka.ActorRef[Any], int]]:
        """(name, ref, generation) of every child that should be alive now."""
        out = [(name, ref, 0) for name, ref in self.router.services.items()
               if name != SUPERVISOR]
        out += [(pair, h.ref, h.generation) for pair, h in self.router.pairs.items()
                if h.ref is not None and h.state == "running"]
        return out

    def sweep(self, children: list[tuple[str, pykka.ActorRef[Any], int]] | None = None,
              ) -> list[ChildFailed]:
        """Check the last pings of ``children`` (by default every child, forgetting the pings
        of those gone), report the overdue, ping whoever has none pending."""
        if children is None:
            children = self.children()
            self._forget(children)
        now = self.clock()
        hung: list[ChildFailed] = []
        for name, ref, generation in children:
            probe = self._probes.get(name)
            pending = (probe is not None and probe.generation == generation
                       and not probe.reply.answered)
            if pending:
                assert probe is not None
                if now - probe.sent_at > self.timeout_s:
                    hung.append(ChildFailed(
                        name=name, generation=generation,
                        error=f"hung: no heartbeat reply within {self.timeout_s:g} s"))
                    del self._probes[name]
                continue
            try:
                self._probes[name] = _Probe(generation, now, ping(ref))
            except pykka.ActorDeadError:
                self._probes.pop(name, None)  # a crash; on_failure reports it
        return hung

    def slices(self, children: list[tuple[str, pykka.ActorRef[Any], int]],
               ) -> list[list[tuple[str, pykka.ActorRef[Any], int]]]:
        """One round's children in slices of at most ``SLICE_PINGS`` (one slice, maybe
        empty, for a small system)."""
        return [children[i:i + SLICE_PINGS]
                for i in range(0, len(children), SLICE_PINGS)] or [[]]

    def _forget(self, children: list[tuple[str, pykka.ActorRef[Any], int]]) -> None:
        alive = {name for name, _, _ in children}
        for name in [n for n in self._probes if n not in alive]:
            del self._probes[name]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        """Rounds of ``interval_s``, each child pinged once a round, its slices evenly
        apart. The children are read once a round: one restarted meanwhile is pinged under
        its new generation from the next round on (an old generation's report is ignored)."""
        while True:
            children = self.children()
            self._forget(children)
            parts = self.slices(children)
            pause = self.interval_s / len(parts)
            for part in parts:
                if self._stop.wait(pause):
                    return
                for failure in self.sweep(part):
                    logger.error("{} (generation {}) is hung: {}", failure.name,
                                 failure.generation, failure.error)
                    self.router.tell(SUPERVISOR, failure)
