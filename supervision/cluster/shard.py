"""A shard: a whole pykka system for a slice of the pairs, inside one Ray actor.

What runs here: the shard's market data (its own simulator slice, replay files or exchange
streams) with its feed thread, a pair pool with the pairs' orchestrators, a local supervisor
that restarts a crashed pair inside the shard as in one process, and a watchdog. What does
not: risk, execution and state. The shard's router sends whatever its actors address to them
(and every event) into an ``Outbox``, which goes up the shard's connection to the head
(``supervision.cluster.channel``) as soon as it is filled; the head's answers come down the
same connection. Ticks stay here.

Threads: pykka's and the pool's, the feed's, the watchdog's; Ray's threads run the calls
(``ShardServer`` is a threaded actor, so a call never waits behind another).

Failures: a pair's crash stays here (the local supervisor). The market data failing, or the
shard not hearing from the head for ``shard_timeout_s`` (a partition, or a head that gave up on
it), and the shard stops trading: its pairs and feed stop, and its outbox is dropped. The head
places the pairs elsewhere; they resume from state. The Ray actor is created without restarts:
the head, not Ray, decides where a lost shard's pairs go and under which generation.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.market import MarketDataActor, MarketDataCore, StartFeed
from actors.messages import (
    EVENTS,
    EXECUTION,
    MARKET_DATA,
    RISK,
    STATE,
    SUPERVISOR,
    FeedEnded,
    FeedStale,
    MarketTick,
    MarkPrices,
    Ping,
)
from actors.pair import PairPool, limits_for
from actors.router import Router
from supervision.cluster.channel import ShardChannel, heartbeat_s
from supervision.cluster.wire import (
    Addressed,
    Downlink,
    PairReport,
    ShardFailed,
    ShardHello,
    ShardReport,
    ShardSpec,
    Uplink,
)
from supervision.runtime import MarketSource, make_market_data
from supervision.tree import SetPaused, Shutdown, StartPairs, SupervisorActor, Watchdog

HEAD_SERVICES = frozenset({RISK, STATE, EXECUTION})
"""Addresses that live on the head: a shard's router sends them up."""
CALL_THREADS = 4
"""Ray calls a shard runs at once (start, drain, report, fence, stop): a slow one never holds
up a fence."""
REPORT_EVERY_S = 0.5
"""How often a batch up carries the shard's pairs' figures."""


class Outbox:
    """What the shard's actors send the head, in order; any thread puts, the connection's
    sending thread takes."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._messages: deque[Addressed] = deque()
        self._wake = wake
        self._rung = False
        self.closed = False
        self.sent = 0
        """Messages put so far (``drain`` waits until the head has taken them all)."""

    def put(self, to: str, message: Any) -> None:
        if self.closed:
            return
        self._messages.append((to, message))
        self.sent += 1
        if not self._rung:  # one wake-up per batch, not per message
            self._rung = True
            self._wake()

    def close(self) -> None:
        """Nothing more goes up, and what waits is dropped (the head has moved on)."""
        self.closed = True
        self._messages.clear()

    def waiting(self) -> bool:
        return bool(self._messages)

    def take(self) -> tuple[Addressed, ...]:
        self._rung = False
        messages = self._messages
        out = []
        while messages:
            out.append(messages.popleft())
        return tuple(out)


class ShardRouter(Router):
    """A router whose risk, execution and state are the head's: their messages go up."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self.outbox = outbox

    def tell(self, to: str, message: object) -> None:
        if to in HEAD_SERVICES:
            self.outbox.put(to, message)
            return
        super().tell(to, message)


class ShardRuntime:
    """The shard's pykka system, built and run by ``ShardServer`` (or directly, in tests)."""

    def __init__(self, spec: ShardSpec, wake: Callable[[], None]) -> None:
        self.spec = spec
        config = spec.config
        self.outbox = Outbox(wake)
        self.router = router = ShardRouter(self.outbox)
        self.state = "starting"
        self.tick_pairs: frozenset[str] = frozenset()
        self._next_seq = 0
        self._early: dict[int, Downlink] = {}
        self._last_contact: float | None = None
        """When a batch from the head last came; None until one has (the head places
        every shard before it opens its database, which may take a while)."""
        self._last_report = 0.0
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        router.subscribe(self._forward_event)
        self.market = MarketSource(config, spec.start_ms, on_notice=self._feed_notice)
        self.market_core: MarketDataCore = make_market_data(config, self.market, packed=True)
        resume = dict(spec.resume_after_ms)
        self.pool: PairPool | None = None
        try:
            if config.pair_workers:
                stall_s, monitor_s = limits_for(config.restart.heartbeat_timeout_s)
                self.pool = PairPool(config.pair_workers, stall_s=stall_s,
                                     monitor_s=monitor_s, name=f"shard{spec.index}-worker"
                                     ).start()
            router.services[MARKET_DATA] = MarketDataActor.start(
                self.market_core, router, skip_seen(self.market.ticks(), resume), config.speed,
                lambda: self.tick_pairs, live=self.market.is_live,
                close_source=self.market.close)
            router.services[SUPERVISOR] = SupervisorActor.start(
                config, router, self.market_core.history, self._feed_ended, self._escalate,
                pool=self.pool)
            start = StartPairs(specs=spec.specs, generations=spec.generations)
            router.services[SUPERVISOR].ask(start, timeout=max(30.0, start.timeout(
                config.ask_timeout)))
        except BaseException:
            # pykka's threads are not daemons: left running, they would keep the process
            # alive after Ray let go of it (a strategy that cannot be built here).
            self._stop_actors(time.monotonic() + 5.0)
            raise
        self.watchdog = Watchdog(router, config.restart.heartbeat_interval_s,
                                 config.restart.heartbeat_timeout_s)
        self.watchdog.start()
        self._lease = threading.Thread(target=self._watch_lease, daemon=True,
                                       name=f"shard{spec.index}-lease")
        self._lease.start()
        self.state = "running"

    # -- the head's calls ----------------------------------------------------------------------

    def hello(self) -> ShardHello:
        node, host = "local", "127.0.0.1"
        with contextlib.suppress(Exception):  # outside Ray (tests): no runtime context
            import ray

            node = ray.get_runtime_context().get_node_id()
            host = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        return ShardHello(node=node[:8], node_id=node, host=host, pid=os.getpid())

    def uplink(self) -> Uplink:
        """The batch to send up: every message waiting, and a report when one is due. A
        pair's mark that leaves lets the pair send its next: at most one per pair and batch
        goes up, and the head holds back one that state has not read yet (as
        ``OrchestratorActor._pace_mark`` does in one process)."""
        messages = self.outbox.take()
        self.read_marks(m.marks[0][0] for _, m in messages if type(m) is MarkPrices)
        now = time.monotonic()
        report = None
        if now - self._last_report >= REPORT_EVERY_S:
            self._last_report = now
            report = self.report()
        return Uplink(shard=self.spec.index, generation=self.spec.generation,
                      messages=messages, report=report)

    def read_marks(self, pairs: Iterable[str]) -> None:
        handles = self.router.pairs
        for pair in pairs:
            handle = handles.get(pair)
            if handle is not None:
                handle.mark_unread = False

    def apply(self, batch: Downlink) -> None:
        """Deliver a downlink batch, and any that arrived early, in ``seq`` order."""
        self._last_contact = time.monotonic()
        with self._lock:
            self._early[batch.seq] = batch
            while self._next_seq in self._early:
                ready = self._early.pop(self._next_seq)
                self._next_seq += 1
                self._deliver(ready)

    def _deliver(self, batch: Downlink) -> None:
        if batch.tick_pairs is not None:
            self.tick_pairs = batch.tick_pairs
        tell = self.router.tell
        for to, message in batch.messages:
            if to == SUPERVISOR and isinstance(message, SetPaused):
                self.router.services[SUPERVISOR].tell(message)
            else:
                tell(to, message)

    def start_feed(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # stopped meanwhile (fenced)
            self.router.services[MARKET_DATA].tell(StartFeed())

    def stop_feed(self) -> None:
        """The system is stopping: no more ticks (the pairs finish what they have)."""
        _stop(self.router.services[MARKET_DATA], time.monotonic() + 2.0)

    def drain(self, timeout: float) -> tuple[int, int]:
        """Ping every pair (their inboxes are first in, first out), then say how many ticks
        they processed and how many messages the outbox has had: once the head has taken
        that many, everything the pairs did before the ping is on its way."""
        deadline = time.monotonic() + timeout
        for handle in list(self.router.pairs.values()):
            if handle.ref is not None:
                with contextlib.suppress(pykka.Timeout, pykka.ActorDeadError):
                    handle.ref.ask(Ping(), timeout=max(0.05, deadline - time.monotonic()))
        return sum(h.ticks for h in self.router.pairs.values()), self.outbox.sent

    def report(self) -> ShardReport:
        now_ns = time.perf_counter_ns()
        core = self.market_core
        pairs = []
        for pair, h in self.router.pairs.items():
            latency = h.latency
            counts, total_s = latency.histogram()
            p50, p99 = latency.percentiles(now_ns) or (None, None)
            drops = core.dropped(pair)
            pairs.append(PairReport(
                pair=pair, state=h.state, paused=h.paused, generation=h.generation,
                restarts=h.restarts, last_error=h.last_error, strategy=h.strategy,
                ticks=h.ticks, shed=h.shed, last_price=h.last_price, last_ts_ms=h.last_ts_ms,
                tick_age_s=(now_ns - h.last_tick_ns) / 1e9 if h.last_tick_ns else None,
                latency_p50_ms=p50, latency_p99_ms=p99, latency_counts=tuple(counts),
                latency_sum_s=total_s, accepted=core.accepted(pair),
                dropped=tuple(sorted(drops.items()))))
        unknown = sum(n for reason, n in core.dropped().items() if reason == "unknown_pair")
        live = self.market.live_feed
        return ShardReport(pairs=tuple(pairs), state=self.state, unknown_dropped=unknown,
                           feed=None if live is None else live.stats())

    def fence(self, reason: str) -> None:
        """The head has moved on from this shard: stop trading now."""
        self.stop_trading(f"fenced: {reason}")

    # -- the shard's own ---------------------------------------------------------------------

    def _forward_event(self, event: object) -> None:
        self.outbox.put(EVENTS, event)

    def _feed_notice(self, notice: FeedStale) -> None:
        """A pair's exchange stream went stale or came back: risk on the head gates entries
        on it, as in one process (runs on the feed's thread: two puts)."""
        self.router.tell(RISK, notice)
        self.router.tell(EVENTS, notice)

    def _feed_ended(self, ended: FeedEnded) -> None:
        self.state = "finished"
        self.outbox.put(SUPERVISOR, ended)

    def _escalate(self, reason: str) -> None:
        self.outbox.put(SUPERVISOR, ShardFailed(reason=reason))

    def _watch_lease(self) -> None:
        """Cut off from the head for ``shard_timeout_s``: the head has placed these pairs
        elsewhere by now, so trading on here could only do harm."""
        timeout = self.spec.config.cluster.shard_timeout_s
        while not self._stopped.wait(min(0.25, timeout / 4)):
            contact = self._last_contact
            if (contact is not None and time.monotonic() - contact > timeout
                    and self.state == "running"):
                logger.error("shard {}: no word from the head for {:g} s; it stops trading",
                             self.spec.index, timeout)
                self.stop_trading("no word from the head")

    def stop_trading(self, reason: str) -> None:
        if self.state in ("fenced", "stopped"):
            return
        self.state = "fenced"
        self.outbox.close()
        logger.warning("shard {} (generation {}) stops trading: {}", self.spec.index,
                       self.spec.generation, reason)
        threading.Thread(target=self.stop, args=(5.0, "fenced"), daemon=True,
                         name=f"shard{self.spec.index}-stop").start()

    def stop(self, timeout: float = 5.0, final: str = "stopped") -> None:
        """Stop the feed, the pairs, the supervisor and the pool; safe to call twice. pykka's
        threads are not daemons: a worker whose actors still ran would never exit."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        self.watchdog.stop()
        self._stop_actors(time.monotonic() + timeout)
        self.state = final

    def _stop_actors(self, deadline: float) -> None:
        """The supervisor, the feed, the pairs and the pool: whichever were started."""
        services = self.router.services
        supervisor = services.get(SUPERVISOR)
        if supervisor is not None:
            with contextlib.suppress(pykka.Timeout, pykka.ActorDeadError):
                supervisor.ask(Shutdown(), timeout=1.0)
        if MARKET_DATA in services:
            _stop(services[MARKET_DATA], deadline)
        for handle in list(self.router.pairs.values()):
            if handle.ref is not None:
                _stop(handle.ref, deadline)
            handle.state = "failed" if handle.state == "failed" else "stopped"
        if self.pool is not None:
            self.pool.close(max(0.1, deadline - time.monotonic()))
        if supervisor is not None:
            _stop(supervisor, deadline)


def _log_to_stderr(level: str) -> None:
    """The shard's process is the system's own (Ray started it for us): its records go to
    stderr, which Ray forwards to the head's terminal, prefixed with the shard's pid."""
    logger.remove()
    logger.add(sys.stderr, level=level, format="{time:HH:mm:ss.SSS} {level: <8} {message}")
    for package in ("actors", "supervision", "strategies"):
        logger.enable(package)


def _stop(ref: pykka.ActorRef[Any], deadline: float) -> None:
    with contextlib.suppress(pykka.Timeout, pykka.ActorDeadError):
        ref.stop(block=True, timeout=max(0.1, deadline - time.monotonic()))


def skip_seen(ticks: Iterator[MarketTick], after_ms: dict[str, int]) -> Iterator[MarketTick]:
    """``ticks`` without each pair's ticks up to ``after_ms[pair]``: a shard placed again
    goes on where its pairs were (the simulator's paths and the files are the same)."""
    if not after_ms:
        yield from ticks
        return
    for tick in ticks:
        if tick.ts_ms > after_ms.get(tick.pair, 0):
            yield tick


class ShardServer:
    """The Ray actor (wrapped by ``ray.remote`` in ``supervision.cluster.connect``, threaded:
    ``CALL_THREADS`` calls at once). ``start`` builds the runtime and opens the shard's end of
    its connection to the head, which carries everything else the two say."""

    def __init__(self, spec: ShardSpec) -> None:
        self.spec = spec
        self.runtime: ShardRuntime | None = None
        self.channel: ShardChannel | None = None
        self._ready = threading.Event()

    def start(self) -> ShardHello:
        config = self.spec.config
        _log_to_stderr(config.log_level)
        if config.gil_switch_ms is not None:
            # As the head does (``TradingSystem``), for the whole process, which is ours: at
            # Python's 5 ms a busy pair worker held a batch up back for up to 5 ms.
            sys.setswitchinterval(config.gil_switch_ms / 1000.0)
        self.runtime = runtime = ShardRuntime(self.spec, self._ready.set)
        hello = runtime.hello()
        self.channel = ShardChannel(
            hello.host, self.spec.link_key, apply=runtime.apply, uplink=runtime.uplink,
            ready=self._ready, heartbeat_s=heartbeat_s(config.cluster.shard_timeout_s),
            name=f"shard{self.spec.index}")
        return attrs.evolve(hello, port=self.channel.port)

    def start_feed(self) -> None:
        assert self.runtime is not None
        self.runtime.start_feed()

    def stop_feed(self) -> None:
        assert self.runtime is not None
        self.runtime.stop_feed()

    def drain(self, timeout: float) -> tuple[int, int]:
        assert self.runtime is not None
        return self.runtime.drain(timeout)

    def report(self) -> ShardReport:
        assert self.runtime is not None
        return self.runtime.report()

    def fence(self, reason: str) -> str:
        if self.runtime is not None:
            self.runtime.fence(reason)
            return self.runtime.state
        return "stopped"

    def stop(self) -> str:
        if self.runtime is not None:
            self.runtime.stop()
            if self.channel is not None:
                self.channel.close()
            return self.runtime.state
        return "stopped"

    def state(self) -> str:
        return "starting" if self.runtime is None else self.runtime.state

    def __ray_shutdown__(self) -> None:
        if self.runtime is not None:
            self.runtime.stop(1.0)
