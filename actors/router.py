"""Where messages go: stable addresses in front of actors that come and go.

A pair's orchestrator is replaced on every restart, so nobody keeps its ``ActorRef``. They
send to the pair's address and the ``Router`` looks up the ``PairHandle``, a small thread-safe
object that holds the current ref, its generation, the pair's lifecycle and the figures the
status table shows. The feed thread, every actor and the embedding thread use it at once: the
only writes are single attribute assignments (atomic under the GIL), made by one owner each.

Ticks are the one message that can outrun a consumer, so each pair has credits: at most
``max_inflight`` ticks wait for it. A replay at full speed waits for room (backpressure,
nothing lost). A paced or live feed sheds a tick (counted in ``shed``: a pair only needs the
latest price to decide) when the pair has ``max_inflight`` ticks waiting, or when the oldest
tick waiting entered ``SHED_AFTER_MS`` or longer before this one: however many pairs fall
behind, a tick waits at most that long, so a burst leaves a backlog of a tenth of a second,
not of seconds (1,000 pairs at 50,000 ticks/s, ``bench.fleet``; with credits alone, 1,000
ticks a pair were 20 s behind). Orders, fills and state updates are never shed.

Ticks do not go through pykka's inbox but through the pair's ``TickInbox``: a deque beside it
with a doorbell. The feed appends; only a tick into an empty deque sends the actor a
``TicksReady``, and the actor drains what is there. An idle pair costs one message per tick, as
before; a busy one takes ticks in batches, without a lock, a condition, a semaphore and a
thread wake-up each.

Each handle also measures its pair's tick latency (feed receipt to processed), in the pair's
actor: a cumulative histogram that the metrics endpoint reads, and a ring of recent
samples for percentiles over the last minute. That costs about 0.1 µs per tick (a bisect,
an increment and a deque append); ``prometheus_client``'s own ``Histogram.observe`` takes a
lock per bucket and costs several times that.
"""

from __future__ import annotations

import functools
import math
import threading
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pykka
from loguru import logger
from pykka._envelope import Envelope  # the doorbell's envelope, built once (see bind)

from actors.messages import EVENTS, MarketTick, StrategySpec

EventCallback = Callable[[object], None]

LATENCY_BUCKETS_S = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                     0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the tick latency histogram's buckets, in seconds (then +Inf)."""
_BUCKETS_NS = tuple(round(b * 1e9) for b in LATENCY_BUCKETS_S)
RECENT_SAMPLES = 4096
"""Latency samples kept per pair for percentiles: the last minute, or the last 4,096 ticks
where a pair processes more than that in a minute."""
LATENCY_WINDOW_NS = 60 * 10**9
SHED_AFTER_MS = 100
"""A paced or live feed sheds a tick for a pair whose oldest waiting tick is this much older
(two ticks' time at 20 ticks/s): see the module docstring."""
_SHED_AFTER_NS = SHED_AFTER_MS * 1_000_000


class TickLatency:
    """One pair's tick latencies. Written by the pair's actor only; read from any thread
    (a list copy and an array copy are atomic under the GIL).

    The recent samples are two rings of machine integers, not a deque of tuples: a full ring
    of 4,096 (time, latency) tuples is about 470 KB a pair, 470 MB at 1,000 pairs once each
    has seen 4,096 ticks; as 64-bit numbers it is 64 KB a pair. Both rings are allocated
    whole at the start, so that a system's memory is from its first minutes what it will be
    after hours (growing, they reached their size only after 4,096 ticks: 3.5 minutes at 20
    ticks/s, longer than a benchmark)."""

    __slots__ = ("_at", "_count", "_lat", "counts", "sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * (len(_BUCKETS_NS) + 1)
        """Observations per bucket (not cumulative); the last one is +Inf."""
        self.sum_ns = 0
        zeros = bytes(8 * RECENT_SAMPLES)
        self._at = array("q", zeros)
        """perf_counter_ns when each recent tick was processed: the ``n``-th sample is at
        ``n % RECENT_SAMPLES``."""
        self._lat = array("q", zeros)
        self._count = 0
        """Samples recorded (the newest is ``_count - 1``)."""

    def record(self, now_ns: int, latency_ns: int) -> None:
        self.counts[bisect_left(_BUCKETS_NS, latency_ns)] += 1
        self.sum_ns += latency_ns
        count = self._count
        at = count % len(self._at)
        self._at[at] = now_ns
        self._lat[at] = latency_ns
        self._count = count + 1

    @property
    def recent(self) -> list[tuple[int, int]]:
        """(perf_counter_ns when processed, latency ns) of the recent ticks, oldest first.
        Read while the pair records, the two copies may be a sample apart: one pair mixed,
        which no percentile notices."""
        count = self._count
        pairs = list(zip(self._at[:], self._lat[:], strict=True))
        if count < len(pairs):  # not yet full: in order as written
            return pairs[:count]
        split = count % len(pairs)
        return pairs[split:] + pairs[:split]

    def _window(self, since_ns: int) -> list[tuple[int, int]]:
        """The ring's slices (oldest first) that hold the ticks processed at or after
        ``since_ns``. Each part of the ring is in time order, so each is found by bisection.
        Building the (time, latency) tuples took 12 ms of a 50-pair status, long enough to
        hold up the pairs' ticks behind each API poll (bench.api_load: 3.9 ms p99)."""
        count, size = self._count, len(self._at)
        split = count % size
        parts = ((0, count),) if count <= size else ((split, size), (0, split))
        return [(bisect_left(self._at, since_ns, lo, hi), hi) for lo, hi in parts]

    def since(self, since_ns: int) -> list[int]:
        """The latencies (ns) of the recent ticks processed at or after ``since_ns``, oldest
        first (copied in C)."""
        values: list[int] = []
        for lo, hi in self._window(since_ns):
            values.extend(self._lat[lo:hi])
        return values

    def histogram(self) -> tuple[list[int], float]:
        """Cumulative counts per bucket (the last is +Inf, the total) and the sum in seconds."""
        counts, total, cumulative = list(self.counts), 0, []
        for count in counts:
            total += count
            cumulative.append(total)
        return cumulative, self.sum_ns / 1e9

    def percentiles(self, now_ns: int, quantiles: Sequence[float] = (0.5, 0.99),
                    window_ns: int = LATENCY_WINDOW_NS) -> tuple[float, ...] | None:
        """Nearest-rank percentiles in ms of the samples within ``window_ns`` before
        ``now_ns`` (a ``perf_counter_ns`` value); None when there are none.

        numpy selects them from views of the ring (``partition``: no sort, no int objects):
        7.9 µs for a minute at 20 ticks/s, against 71 µs for a sorted list. A status of 50
        pairs built four times a second held the pairs' GIL long enough to raise their p99
        under API load (bench.api_load)."""
        import numpy as np  # here: a run that never asks for percentiles never loads it

        ring = np.frombuffer(self._lat, dtype=np.int64)
        chunks = [ring[lo:hi] for lo, hi in self._window(now_ns - window_ns)]
        values = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        n = len(values)
        if not n:
            return None
        ranks = [min(n, max(1, math.ceil(n * q))) - 1 for q in quantiles]
        chosen = np.partition(values, ranks)
        return tuple(int(chosen[k]) / 1e6 for k in ranks)


@attrs.frozen
class TicksReady:
    """Feed -> pair: ticks wait in the pair's ``TickInbox`` (sent when it was empty)."""


TICKS_READY = TicksReady()
READY_ENVELOPE = Envelope(TICKS_READY)
"""The one envelope every doorbell rings with: a pooled pair knows it by identity and drains
its ticks without pykka's dispatch (``PooledActor.doorbell``)."""


class TickInbox:
    """One pair actor's tick mailbox, bounded to ``capacity`` waiting ticks (the credits).

    One writer (the feed thread) and one reader (the actor): ``append`` and ``popleft`` are
    atomic under the GIL, so neither takes a lock; a full inbox is the only case that needs
    an event, and only while the feed waits on it. A new actor gets a new inbox, so an old one
    that wakes up reads only its own ticks.
    """

    __slots__ = ("_low", "_ring", "_room", "_ticks", "_writer_waits", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._low = capacity // 2
        """A waiting writer is woken once the inbox is down to this: one wake-up per half
        inbox, not one per tick (a full-speed feed is always ahead of its pair)."""
        self._ticks: deque[MarketTick] = deque()
        self._ring: Callable[[], None] | None = None
        self._room = threading.Event()
        self._writer_waits = False

    def bind(self, ref: pykka.ActorRef[Any]) -> None:
        """The actor whose doorbell ``put`` rings: ``TICKS_READY`` straight into its pykka
        inbox, in an envelope built once. ``ActorRef.tell`` checks the actor is alive and
        wraps the message anew on every ring (one ring per tick to an idle pair: 20,000 a
        second with 1,000 pairs); a dead actor's inbox is never read again, and a restart
        binds a new inbox to the new actor."""
        self._ring = functools.partial(ref.actor_inbox.put, READY_ENVELOPE)

    @property
    def full(self) -> bool:
        return len(self._ticks) >= self.capacity

    def wait_for_room(self, timeout: float) -> None:
        """Writer: wait until the reader has taken half the inbox, or ``timeout`` passes."""
        self._room.clear()
        self._writer_waits = True
        if len(self._ticks) >= self.capacity:  # the reader may have taken one meanwhile
            self._room.wait(timeout)
        self._writer_waits = False

    def put(self, tick: MarketTick) -> None:
        """Writer: queue a tick; ring if the actor may have gone idle. The only writer, so
        ``len == 1`` means the reader had emptied the deque: it has stopped draining, or it
        finds this tick in the drain it is in (a spare ring is harmless)."""
        ticks = self._ticks
        ticks.append(tick)
        if len(ticks) == 1 and self._ring is not None:
            self._ring()

    def behind(self, recv_ns: int) -> bool:
        """Writer: True when the oldest waiting tick entered ``SHED_AFTER_MS`` or more
        before ``recv_ns``."""
        try:
            return recv_ns - self._ticks[0].recv_ns >= _SHED_AFTER_NS
        except IndexError:  # nothing waits (the reader may have just taken the last one)
            return False

    def __len__(self) -> int:
        return len(self._ticks)

    def first(self) -> MarketTick:
        return self._ticks[0]

    def pop(self) -> MarketTick:
        """Reader: take the first tick (and wake a writer waiting for room)."""
        ticks = self._ticks
        tick = ticks.popleft()
        if self._writer_waits and len(ticks) <= self._low:
            self._room.set()
        return tick


class PairHandle:
    """The stable face of one pair."""

    __slots__ = (
        "exit_requested",
        "generation",
        "inbox",
        "last_error",
        "last_latency_ns",
        "last_price",
        "last_tick_ns",
        "last_ts_ms",
        "latency",
        "mark_unread",
        "max_inflight",
        "node",
        "pair",
        "paused",
        "ref",
        "restarts",
        "shard",
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
        self.exit_requested = False
        """An exit asked for by hand that the pair has not yet finished (its position is
        still open): a restarted generation is asked again (``supervision.tree``)."""
        self.restarts = 0
        self.last_error = ""
        self.strategy = ""
        self.spec: StrategySpec | None = None
        self.ticks = 0
        self.shed = 0
        self.last_price = 0.0
        self.last_ts_ms = 0
        self.last_latency_ns = 0
        self.last_tick_ns = 0
        """``perf_counter_ns`` when the pair last processed a tick (0: never)."""
        self.latency = TickLatency()
        self.mark_unread = False
        """The pair's last ``MarkPrices`` waits in the state actor's inbox: the pair holds its
        next one back (set by the pair before it sends, cleared by state when it reads)."""
        self.max_inflight = max_inflight
        self.inbox = TickInbox(max_inflight)
        """The current actor's tick inbox (before the first ``attach``: one nobody reads)."""
        self.shard = ""
        self.node = ""
        """On a cluster, the shard hosting the pair and that shard's node ("" in one process)."""

    def new_inbox(self) -> TickInbox:
        """A tick inbox for the pair's next actor."""
        return TickInbox(self.max_inflight)

    def attach(self, ref: pykka.ActorRef[Any], generation: int, inbox: TickInbox) -> None:
        """Point the pair at a new actor and its inbox; the old inbox goes with the old actor."""
        inbox.bind(ref)
        self.inbox = inbox
        self.generation = generation
        self.ref = ref

    def detach(self) -> None:
        self.ref = None

    def deliver(self, tick: MarketTick, block: bool, stop: threading.Event) -> bool:
        """Queue ``tick`` for the pair's actor. A full inbox waits for room when ``block``
        (until ``stop``, or the pair is gone); otherwise a full inbox, or one whose oldest
        tick has waited ``SHED_AFTER_MS``, sheds it. False: not delivered."""
        inbox = self.inbox
        if not block:
            if inbox.full or inbox.behind(tick.recv_ns):
                return False
            inbox.put(tick)
            return True
        while inbox.full:
            if stop.is_set():
                return False
            inbox.wait_for_room(0.2)
            if self.ref is None or self.state in ("failed", "stopped"):
                return False
            inbox = self.inbox  # a restart brings a new, empty inbox
        inbox.put(tick)
        return True

    def processed(self, tick: MarketTick, now_ns: int, generation: int) -> None:
        """Record a processed tick's figures; called by the pair's actor only. A replaced
        actor that wakes up is ignored."""
        if generation != self.generation:
            return
        self.ticks += 1
        self.last_price = tick.price
        self.last_ts_ms = tick.ts_ms
        self.last_tick_ns = now_ns
        if tick.recv_ns:
            latency = self.last_latency_ns = now_ns - tick.recv_ns
            self.latency.record(now_ns, latency)


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
