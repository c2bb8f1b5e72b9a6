"""The head's side of a cluster: the shards it placed, the links to them, and their failures.

``ClusterHead`` places one Ray actor per shard (``supervision.cluster.shard``), keeps a link
to each (``ShardLink``: a connection of its own, ``supervision.cluster.channel``, with a
thread that dispatches what comes up to risk, execution and state, and a thread that sends
down what those address to the shard's pairs), and mirrors each pair in the head's router
as a ``PairHandle`` whose ref (``RemotePairRef``) puts messages on that link. So risk,
execution and state answer a pair on a shard exactly as one in this process:
``router.tell(pair, message)``.

Threads: two per link, one monitor, and one per placement under way; the shard decisions
(give up on a shard, place it again) run on ``ClusterSupervisorActor``'s thread, one at a
time.

Failure domains:
- a pair that crashes restarts inside its shard (the shard's own supervisor);
- a shard whose Ray actor dies (its process or node is gone) or that the head has not heard
  from for ``shard_timeout_s`` is lost: its generation moves on (``ShardFence``), its pairs
  are fenced one generation up at risk and state, and a new shard is placed on another node
  that offers the resources; its pairs resume from state, skipping the ticks already traded;
- a batch from a generation the head moved on from (a shard cut off by a partition, whose
  messages arrive late) is refused whole, and that shard is told to stop; one that cannot be
  told stops by itself once it has not heard from the head for ``shard_timeout_s``.
Orders are placed only by the head's execution, once per order id; a proposal is refused by
the shard fence or by the pair's generation fence at risk, never executed twice.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.messages import (
    EVENTS,
    RISK,
    SERVICES,
    STATE,
    SUPERVISOR,
    ChildFailed,
    FeedEnded,
    GetPortfolio,
    MarkPrices,
    PairGeneration,
    Ping,
    ProposeOrder,
    StrategySpec,
)
from actors.pair import with_peaks
from actors.router import LATENCY_BUCKETS_S, PairHandle, Router
from supervision.cluster.channel import POLL_S, connect, heartbeat_s, new_key
from supervision.cluster.plan import ShardFence, pick_node, plan_shards
from supervision.cluster.wire import (
    Downlink,
    FromShard,
    RemoteLatency,
    ShardFailed,
    ShardLost,
    ShardPlaced,
    ShardReport,
    ShardSpec,
    Uplink,
    finite,
)
from supervision.config import ConfigError, SystemConfig
from supervision.tree import AddPair, RemovePair, RestartTracker, SetPaused, Shutdown, Watchdog

PUSH_IDLE_S = 0.05
"""How often an idle sending thread looks for a change of the pairs that need their ticks at
the paper exchange (resting limit orders), and whether a heartbeat is due."""


class RemotePairRef:
    """What the head's router holds for a pair on a shard: ``tell`` goes down its link."""

    def __init__(self, head: ClusterHead, index: int, pair: str) -> None:
        self._head = head
        self._index = index
        self._pair = pair

    def tell(self, message: object) -> None:
        link = self._head.slots[self._index].link
        if link is None:
            raise pykka.ActorDeadError(f"{self._pair}: its shard is being placed again")
        link.send(self._pair, message)

    def is_alive(self) -> bool:
        slot = self._head.slots[self._index]
        handle = self._head.router.pairs.get(self._pair)
        return (slot.link is not None and slot.state == "running" and handle is not None
                and handle.state in ("running", "paused"))

    def stop(self, block: bool = True, timeout: float | None = None) -> None:
        """Shards stop as a whole (``ClusterHead.close``)."""


class ShardLink:
    """The head's end of one shard incarnation's connection (``supervision.cluster.channel``):
    a thread reads what comes up and dispatches it, a thread sends what the head's actors
    address to the shard's pairs."""

    def __init__(self, head: ClusterHead, index: int, generation: int,
                 address: tuple[str, int], key: bytes) -> None:
        self.head = head
        self.index = index
        self.generation = generation
        self.received = 0
        self._address = address
        self._key = key
        self._conn: Any = None
        self._down: deque[tuple[str, Any]] = deque()
        self._kick = threading.Event()
        self._closed = threading.Event()
        self._sending = threading.Lock()
        self._seq = 0
        self._tick_pairs: frozenset[str] | None = None
        self._held: list[Uplink] | None = None
        self._received = threading.Condition()
        self._heartbeat_s = heartbeat_s(head.cluster.shard_timeout_s)

    def start(self) -> ShardLink:
        """Connect and start both threads; a shard that cannot be reached is lost."""
        try:
            self._conn = connect(*self._address, self._key)
        except Exception as exc:  # noqa: BLE001 - refused, unreachable, wrong key: it is lost
            self.head.lost(self.index, self.generation,
                           f"cannot connect to {self._address[0]}:{self._address[1]}: "
                           f"{type(exc).__name__}: {exc}")
            return self
        for target, name in ((self._receive, "up"), (self._send, "down")):
            threading.Thread(target=target, daemon=True,
                             name=f"shard{self.index}-{name}").start()
        return self

    def close(self) -> None:
        self._closed.set()
        self._kick.set()
        with self._received:
            self._received.notify_all()

    # -- down --------------------------------------------------------------------------------

    def send(self, to: str, message: Any) -> None:
        self._down.append((to, message))
        self._kick.set()

    def _send(self) -> None:
        head, conn = self.head, self._conn
        last = 0.0
        while not self._closed.is_set():
            self._kick.wait(PUSH_IDLE_S)
            self._kick.clear()
            with self._sending:
                messages = []
                down = self._down
                while down:
                    messages.append(down.popleft())
                tick_pairs = head.tick_pairs()
                changed = tick_pairs != self._tick_pairs
                now = time.monotonic()
                if not messages and not changed and now - last < self._heartbeat_s:
                    continue
                self._tick_pairs = tick_pairs
                batch = Downlink(seq=self._seq, messages=tuple(messages),
                                 tick_pairs=tick_pairs if changed else None)
                self._seq += 1
                try:
                    conn.send(batch)
                except Exception as exc:  # noqa: BLE001 - the reading side reports the loss
                    logger.debug("shard {}: sending failed: {!r}", self.index, exc)
                    return
                last = now

    def flush(self, deadline: float) -> None:
        """Wait until everything sent so far is on its way to the shard (or ``deadline``)."""
        while self._down and time.monotonic() < deadline and not self._closed.is_set():
            self._kick.set()
            self._closed.wait(0.002)
        if self._sending.acquire(timeout=max(0.0, deadline - time.monotonic())):
            self._sending.release()

    # -- up ------------------------------------------------------------------------------------

    def _receive(self) -> None:
        head, conn = self.head, self._conn
        try:
            while not self._closed.is_set():
                head.release_marks(self.index)
                try:
                    if not conn.poll(POLL_S):
                        continue
                    uplink: Uplink = conn.recv()
                except Exception as exc:  # noqa: BLE001 - a broken connection: the shard is lost
                    if not self._closed.is_set():
                        head.lost(self.index, self.generation,
                                  f"connection lost: {type(exc).__name__}: {exc}")
                    return
                if self._held is not None:
                    self._held.append(uplink)
                    continue
                head.dispatch(uplink)
                with self._received:
                    self.received += len(uplink.messages)
                    self._received.notify_all()
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def wait_received(self, count: int, deadline: float) -> None:
        with self._received:
            self._received.wait_for(
                lambda: self.received >= count or self._closed.is_set(),
                max(0.0, deadline - time.monotonic()))

    # -- a network partition, for tests ------------------------------------------------------------

    def hold(self) -> None:
        """Keep what the shard sends from here on back, as a network partition would."""
        self._held = []

    def release(self) -> int:
        """Deliver what was held back (late); returns how many batches."""
        held, self._held = self._held or [], None
        for uplink in held:
            self.head.dispatch(uplink)
        return len(held)


@attrs.define
class ShardSlot:
    """One shard's place in the plan, across the incarnations that fill it."""

    index: int
    pairs: tuple[str, ...]
    state: str = "starting"
    """starting, placed (its pairs built, not linked yet), running, finished (its feed
    ended), placing (again, after a loss), failed, stopped."""
    actor: Any = None
    link: ShardLink | None = None
    node: str = ""
    """The node's id, shortened (what the status shows)."""
    node_id: str = ""
    """The node's full Ray id, or where a placement under way is headed."""
    host: str = ""
    port: int = 0
    """Where the shard's end of its connection listens (on ``host``)."""
    link_key: bytes = attrs.field(default=b"", repr=False)
    """The key of the newest incarnation's connection (a secret: never printed)."""
    pid: int = 0
    ended: FeedEnded | None = None
    last_heard: float = 0.0
    lock: threading.RLock = attrs.field(factory=threading.RLock)
    held_marks: dict[str, MarkPrices] = attrs.field(factory=dict)
    nodes_lost: list[str] = attrs.field(factory=list)
    paused: tuple[str, ...] = ()
    """Pairs paused when the shard was lost (paused again on its successor)."""
    retired: dict[int, Any] = attrs.field(factory=dict)
    """Earlier incarnations' actors by generation, told to stop once more if they speak."""


@attrs.define
class _Totals:
    """What a pair's earlier shards counted, added to its current shard's figures."""

    ticks: int = 0
    shed: int = 0
    restarts: int = 0
    accepted: int = 0
    dropped: dict[str, int] = attrs.field(factory=dict)


class ShardFeeds:
    """The shards' feed counters, read like ``MarketDataCore`` by the status and metrics."""

    def __init__(self) -> None:
        self.accepted_by_pair: dict[str, int] = {}
        self.dropped_by_pair: dict[str, dict[str, int]] = {}
        self.unknown: dict[int, int] = {}

    def accepted(self, pair: str) -> int:
        return self.accepted_by_pair.get(pair, 0)

    def dropped(self, pair: str | None = None) -> dict[str, int]:
        if pair is not None:
            return dict(self.dropped_by_pair.get(pair, {}))
        total: dict[str, int] = {}
        for counts in self.dropped_by_pair.values():
            for reason, n in counts.items():
                total[reason] = total.get(reason, 0) + n
        total["unknown_pair"] = sum(self.unknown.values())
        return total

    def dropped_for(self, pair: str) -> int:
        return sum(self.dropped(pair).values())


class ShardStreams:
    """The shards' exchange streams as one feed, read like ``LiveFeed`` by the status and
    ``/health``: each shard streams its own pairs, so counts add up and lists join."""

    def __init__(self) -> None:
        self.reports: dict[int, Any] = {}
        """Each shard's last ``FeedStats``."""

    def stats(self) -> Any:
        reports = [self.reports[i] for i in sorted(self.reports)]
        first = reports[0]
        return attrs.evolve(
            first, running=all(r.running for r in reports),
            stale_pairs=tuple(sorted(p for r in reports for p in r.stale_pairs)),
            dropped=tuple(d for r in reports for d in r.dropped),
            overflow=sum(r.overflow for r in reports),
            disconnects=sum(r.disconnects for r in reports),
            reconnects=sum(r.reconnects for r in reports),
            down_streams=tuple(s for r in reports for s in r.down_streams))

    def stale_pairs(self) -> frozenset[str]:
        return frozenset(p for r in self.reports.values() for p in r.stale_pairs)


class ClusterHead:
    """Places the shards, links them to the head's actors, and replaces the ones it loses."""

    def __init__(self, config: SystemConfig, router: Router, session: Any, *,
                 start_ms: int, specs: Iterable[tuple[str, StrategySpec]]) -> None:
        cluster = config.cluster
        assert cluster is not None
        self.config = config
        self.cluster = cluster
        self.router = router
        self.session = session
        self.start_ms = start_ms
        self.specs = dict(specs)
        self.slots = [ShardSlot(index=i, pairs=pairs)
                      for i, pairs in enumerate(plan_shards(config.pairs, cluster.shards))]
        self.fence = ShardFence(len(self.slots))
        self.pair_generation: dict[str, int] = dict.fromkeys(config.pairs, 0)
        self.totals = {pair: _Totals() for pair in config.pairs}
        self.feeds = ShardFeeds()
        self.streams = ShardStreams()
        self.tracker = RestartTracker(config.restart)
        self.tick_pairs: Callable[[], frozenset[str]] = frozenset
        """Pairs whose ticks the paper exchange needs (set by the system once execution runs)."""
        self.on_all_ended: Callable[[FeedEnded], None] = lambda _ended: None
        self.shutting_down = False
        self.placed = 0
        """Shards placed again after a loss."""
        self._monitor = threading.Thread(target=self._watch, daemon=True, name="shard-monitor")
        self._closed = threading.Event()
        self._placing = threading.Lock()
        for slot in self.slots:
            for pair in slot.pairs:
                handle = router.add_pair(pair, config.max_inflight_ticks)
                handle.ref = RemotePairRef(self, slot.index, pair)  # type: ignore[assignment]
                handle.latency = RemoteLatency(len(LATENCY_BUCKETS_S) + 1)  # type: ignore[assignment]
                handle.shard = str(slot.index)
                handle.spec = self.specs.get(pair, config.strategy)

    # -- placing ------------------------------------------------------------------------------

    def spec_for(self, slot: ShardSlot, generation: int, *, resume: bool) -> ShardSpec:
        pairs = set(slot.pairs)
        config = attrs.evolve(
            self.config, pairs=slot.pairs, replay=tuple(r for r in self.config.replay
                                                        if r[0] in pairs),
            metrics_port=None, state_db=":memory:")
        handles = self.router.pairs
        slot.link_key = new_key()
        return ShardSpec(
            index=slot.index, generation=generation, config=config, start_ms=self.start_ms,
            link_key=slot.link_key,
            generations=tuple((p, self.pair_generation[p]) for p in slot.pairs),
            resume_after_ms=tuple((p, handles[p].last_ts_ms) for p in slot.pairs
                                  if resume and handles[p].last_ts_ms),
            specs=tuple((p, self.specs.get(p, self.config.strategy)) for p in slot.pairs))

    def place(self, timeout: float) -> None:
        """Place every shard (Ray spreads them over the nodes) and start its pairs, before the
        head opens its database: what the pairs send waits in their shards' outboxes.

        Raises:
            ConfigError: a shard could not start (a node without the project, a strategy
                that cannot be built there) within ``timeout``.
        """
        actors = [(slot, self.session.create_shard(self.spec_for(slot, 0, resume=False)))
                  for slot in self.slots]
        for slot, actor in actors:
            try:
                hello = self.session.started(actor, timeout)
            except Exception as exc:  # noqa: BLE001 - any way of failing is one bad input
                reason = str(exc).strip().splitlines()
                raise ConfigError(
                    f"cluster: shard {slot.index} ({len(slot.pairs)} pair(s) from "
                    f"{slot.pairs[0]}) could not start: {type(exc).__name__}: "
                    f"{reason[-1] if reason else 'no reason given'}; every node needs this "
                    "project and its strategies installed") from None
            self._place(slot, actor, hello)

    def link(self) -> None:
        """Link every placed shard to the head's actors (which run now), and watch them."""
        for slot in self.slots:
            self._link(slot, 0)
        self._monitor.start()

    def _place(self, slot: ShardSlot, actor: Any, hello: Any) -> None:
        with slot.lock:
            slot.actor, slot.node, slot.host, slot.pid = actor, hello.node, hello.host, hello.pid
            slot.port = hello.port
            slot.node_id = hello.node_id
            slot.state = "placed"

    def _attach(self, slot: ShardSlot, actor: Any, generation: int, hello: Any) -> None:
        self._place(slot, actor, hello)
        self._link(slot, generation)

    def _link(self, slot: ShardSlot, generation: int) -> None:
        with slot.lock:
            slot.state = "running"
            slot.last_heard = time.monotonic()
            slot.held_marks.clear()
            link = slot.link = ShardLink(self, slot.index, generation,
                                         (slot.host, slot.port), slot.link_key)
        link.start()  # outside the lock: connecting may take up to CONNECT_S
        for pair in slot.pairs:
            handle = self.router.pairs[pair]
            handle.node = f"{slot.host}/{slot.node}"
        logger.info("shard {} (generation {}) runs {} pair(s) on node {} ({}, pid {})",
                    slot.index, generation, len(slot.pairs), slot.node, slot.host, slot.pid)
        self.router.tell(EVENTS, ShardPlaced(index=slot.index, generation=generation,
                                             node=slot.node, pairs=slot.pairs))

    def start_feeds(self, slots: Iterable[ShardSlot] | None = None) -> None:
        for slot in self.slots if slots is None else slots:
            if slot.actor is not None:
                slot.actor.start_feed.remote()

    # -- what comes up --------------------------------------------------------------------------

    def dispatch(self, uplink: Uplink) -> None:
        """Deliver a shard's batch to the head's actors, unless its generation is stale.
        Runs on the link's reading thread."""
        slot = self.slots[uplink.shard]
        router = self.router
        with slot.lock:
            proposals = sum(1 for _, m in uplink.messages if type(m) is ProposeOrder)
            if not self.fence.admits(slot.index, uplink.generation, proposals):
                self._fence_stale(slot, uplink.generation)
                return
            slot.last_heard = time.monotonic()
            for to, message in uplink.messages:
                kind = type(message)
                if kind is MarkPrices:
                    self._mark(slot, message)
                elif to == SUPERVISOR:
                    router.tell(SUPERVISOR, FromShard(index=slot.index,
                                                      generation=uplink.generation,
                                                      message=message))
                else:
                    if kind is PairGeneration:
                        pair = message.pair
                        self.pair_generation[pair] = max(self.pair_generation.get(pair, 0),
                                                         message.generation)
                    router.tell(to, message)
            if uplink.report is not None:
                self._apply_report(slot, uplink.report)

    def _fence_stale(self, slot: ShardSlot, generation: int) -> None:
        """A late batch: its shard was cut off, not dead. Tell it (again) to stop."""
        actor = slot.retired.pop(generation, None)
        if actor is not None:
            self.session.fence(actor, f"shard {slot.index} generation {generation} is fenced")

    def _mark(self, slot: ShardSlot, mark: MarkPrices) -> None:
        """At most one mark per pair waits in the state actor's inbox, as in one process:
        a newer one is held on the head and merged (``OrchestratorActor._pace_mark``)."""
        pair = mark.marks[0][0]
        held = slot.held_marks.pop(pair, None)
        if held is not None:
            mark = with_peaks(mark, held.peaks)
        handle = self.router.pairs.get(pair)
        if handle is None:
            return
        if handle.mark_unread:
            slot.held_marks[pair] = mark
            return
        handle.mark_unread = True
        self.router.tell(STATE, mark)

    def release_marks(self, index: int) -> None:
        """Send the held marks whose predecessors state has read (the link's reading thread,
        per batch and whenever the connection is idle for ``POLL_S``)."""
        slot = self.slots[index]
        if not slot.held_marks:
            return
        with slot.lock:
            for pair, mark in list(slot.held_marks.items()):
                handle = self.router.pairs.get(pair)
                if handle is not None and not handle.mark_unread:
                    del slot.held_marks[pair]
                    handle.mark_unread = True
                    self.router.tell(STATE, mark)

    def _apply_report(self, slot: ShardSlot, report: ShardReport) -> None:
        now_ns = time.perf_counter_ns()
        handles = self.router.pairs
        feeds = self.feeds
        feeds.unknown[slot.index] = report.unknown_dropped
        if report.feed is not None:
            self.streams.reports[slot.index] = report.feed
        for p in report.pairs:
            handle = handles.get(p.pair)
            if handle is None:
                continue
            base = self.totals[p.pair]
            handle.state = p.state
            handle.paused = p.paused
            handle.generation = p.generation
            handle.restarts = base.restarts + p.restarts
            handle.last_error = p.last_error
            handle.strategy = p.strategy
            handle.ticks = base.ticks + p.ticks
            handle.shed = base.shed + p.shed
            handle.last_price = finite(p.last_price)
            handle.last_ts_ms = p.last_ts_ms
            if p.tick_age_s is not None:
                handle.last_tick_ns = now_ns - int(p.tick_age_s * 1e9)
            latency: RemoteLatency = handle.latency  # type: ignore[assignment]
            latency.counts, latency.sum_s = p.latency_counts, p.latency_sum_s
            latency.p50, latency.p99 = p.latency_p50_ms, p.latency_p99_ms
            feeds.accepted_by_pair[p.pair] = base.accepted + p.accepted
            dropped = dict(base.dropped)
            for reason, n in p.dropped:
                dropped[reason] = dropped.get(reason, 0) + n
            feeds.dropped_by_pair[p.pair] = dropped

    # -- losing and placing again ------------------------------------------------------------------

    def lost(self, index: int, generation: int, reason: str) -> None:
        """A link or the monitor gives up on a shard: the supervisor decides (any thread)."""
        if not self.shutting_down:
            self.router.tell(SUPERVISOR, ShardLost(index=index, generation=generation,
                                                   reason=reason))

    def _watch(self) -> None:
        timeout = self.cluster.shard_timeout_s
        while not self._closed.wait(min(0.1, timeout / 10)):
            now = time.monotonic()
            for slot in self.slots:
                link = slot.link
                if (slot.state == "running" and link is not None
                        and now - slot.last_heard > timeout):
                    self.lost(slot.index, link.generation,
                              f"not heard from for {now - slot.last_heard:.1f} s")

    def replace(self, lost: ShardLost) -> None:
        """Give up on a shard and place its pairs again (the supervisor's thread)."""
        slot = self.slots[lost.index]
        with slot.lock:
            if self.shutting_down or lost.generation != self.fence.current(slot.index):
                return
            generation = self.fence.advance(slot.index)
            old_actor, old_link, old_node = slot.actor, slot.link, slot.node
            slot.link = None
            slot.state = "placing"
            slot.nodes_lost.append(slot.node_id)
            slot.retired[lost.generation] = old_actor
            handles = self.router.pairs
            slot.paused = tuple(p for p in slot.pairs if handles[p].paused)
            for pair in slot.pairs:
                handle = handles[pair]
                totals = self.totals[pair]
                totals.ticks, totals.shed = handle.ticks, handle.shed
                totals.restarts = handle.restarts + 1
                totals.accepted = self.feeds.accepted(pair)
                totals.dropped = self.feeds.dropped(pair)
                handle.state = "restarting"
                handle.last_error = f"shard {slot.index} lost: {lost.reason}"
                # Fenced one generation up before the new shard's pairs exist: anything the old
                # ones still send is refused at risk and state.
                self.pair_generation[pair] += 1
                fence = PairGeneration(pair=pair, generation=self.pair_generation[pair])
                self.router.tell(RISK, fence)
                self.router.tell(STATE, fence)
        logger.error("ALERT shard {} (generation {}) on node {} lost: {}; placing its {} "
                     "pair(s) on another node as generation {}", slot.index, lost.generation,
                     old_node, lost.reason, len(slot.pairs), generation)
        if old_link is not None:
            old_link.close()
        if old_actor is not None:
            self.session.fence(old_actor, f"shard {slot.index} is now generation {generation}")
        threading.Thread(target=self._place_again, args=(slot, generation), daemon=True,
                         name=f"shard{slot.index}-place").start()

    def _place_again(self, slot: ShardSlot, generation: int) -> None:
        decision = self.tracker.on_failure(f"shard{slot.index}", time.monotonic())
        if not decision.restart:
            self._give_up(slot, "lost too often")
            return
        if self._closed.wait(decision.delay_s):
            return
        try:
            with self._placing:  # one choice at a time, each counting the ones before it
                node = pick_node(self.session.nodes(), self.session.needs,
                                 avoid=slot.nodes_lost, load=self._load())
                if node is None:
                    raise RuntimeError("no live node has room for a shard")
                slot.node_id = node
            actor = self.session.create_shard(self.spec_for(slot, generation, resume=True),
                                              node=node)
            hello = self.session.started(actor, max(30.0, self.config.ask_timeout))
        except BaseException as exc:  # noqa: BLE001 - any failure to place: try again, or give up
            if self._closed.is_set():
                return  # stopping: Ray itself is going down
            logger.error("shard {}: placing generation {} failed: {!r}", slot.index,
                         generation, exc)
            # Judged like any loss: the node it was headed for is avoided next time, and the
            # restart limit counts it.
            self.lost(slot.index, generation, f"placement failed: {exc!r}")
            return
        with slot.lock:
            if self.shutting_down or self.fence.current(slot.index) != generation:
                self.session.kill(actor)
                return
        self._attach(slot, actor, generation, hello)
        self.placed += 1
        link = slot.link
        for pair in slot.paused:  # a pause outlives the shard it was made on
            if link is not None:
                link.send(SUPERVISOR, SetPaused(pair=pair, paused=True))
        self.drain(max(5.0, self.config.ask_timeout), slots=[slot])
        self.start_feeds([slot])

    def _give_up(self, slot: ShardSlot, why: str) -> None:
        slot.state = "failed"
        for pair in slot.pairs:
            self.router.pairs[pair].state = "failed"
        logger.critical("ALERT shard {}: {}; its {} pair(s) stop trading, the others go on",
                        slot.index, why, len(slot.pairs))

    def _load(self) -> dict[str, int]:
        """Shards per node (full id), those running and those being placed."""
        load: dict[str, int] = {}
        for slot in self.slots:
            if slot.state in ("placed", "running", "finished", "placing") and slot.node_id:
                load[slot.node_id] = load.get(slot.node_id, 0) + 1
        return load

    def feed_ended(self, index: int, ended: FeedEnded) -> None:
        slot = self.slots[index]
        slot.ended = ended
        slot.state = "finished"
        if all(s.ended is not None or s.state == "failed" for s in self.slots):
            done = [s.ended for s in self.slots if s.ended is not None]
            self.on_all_ended(FeedEnded(ts_ms=max(e.ts_ms for e in done),
                                        ticks=sum(e.ticks for e in done)))

    # -- settling and stopping ---------------------------------------------------------------------

    def drain(self, timeout: float, *, slots: Iterable[ShardSlot] | None = None) -> None:
        """Wait until what is in flight has been handled, across the network: rounds of
        (each shard pings its pairs; the head takes everything they sent; risk, execution and
        state are pinged; what they answered reaches the shards) until a round changes
        nothing (ticks, orders, fills, messages), or ``timeout``."""
        import ray

        deadline = time.monotonic() + timeout
        chosen = list(self.slots if slots is None else slots)
        last: tuple[int, ...] | None = None
        while time.monotonic() < deadline:
            linked = [(s, s.link) for s in chosen if s.link is not None and s.actor is not None]
            asked = [(link, s.actor.drain.remote(max(0.1, deadline - time.monotonic())))
                     for s, link in linked]
            sent_total = ticks_total = 0
            for link, ref in asked:
                try:
                    ticks, sent = ray.get(ref, timeout=max(0.1, deadline - time.monotonic()))
                except Exception as exc:  # noqa: BLE001 - a lost shard is the monitor's business
                    logger.debug("shard {}: not drained: {!r}", link.index, exc)
                    continue
                link.wait_received(sent, deadline)
                sent_total += sent
                ticks_total += ticks
            for name in (RISK, "execution", STATE):
                self._ask(name, Ping(), deadline)
            portfolio = self._ask(STATE, GetPortfolio(), deadline)
            for _, link in linked:
                link.flush(deadline)
            progress = (ticks_total, sent_total, portfolio.orders if portfolio else 0,
                        portfolio.fills if portfolio else 0)
            if progress == last:
                return
            last = progress

    def _ask(self, name: str, message: object, deadline: float) -> Any:
        ref = self.router.services.get(name)
        if ref is None:
            return None
        try:
            return ref.ask(message, timeout=max(0.05, deadline - time.monotonic()))
        except (pykka.Timeout, pykka.ActorDeadError):
            return None

    def stop_feeds(self, timeout: float) -> None:
        self._stop_all("stop_feed", timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop every shard (its pairs, feed and threads), then the links; safe to call twice."""
        if self._closed.is_set():
            return
        self.shutting_down = True
        self._stop_all("stop", timeout)
        self._closed.set()
        for slot in self.slots:
            if slot.link is not None:
                slot.link.close()
            if slot.actor is not None:
                self.session.kill(slot.actor)
            if slot.state not in ("failed",):
                slot.state = "stopped"

    def _stop_all(self, method: str, timeout: float) -> None:
        import ray

        refs = [getattr(s.actor, method).remote() for s in self.slots
                if s.actor is not None and s.state in ("placed", "running", "finished")]
        with contextlib.suppress(Exception):
            ray.wait(refs, num_returns=len(refs), timeout=timeout)


class ClusterSupervisorActor(pykka.ThreadingActor):
    """The head's supervisor on a cluster: the pairs' supervisors are in the shards; this one
    escalates a failed shared actor (as in one process), and gives up on and re-places lost
    shards, one decision at a time."""

    def __init__(self, head: ClusterHead, on_feed_ended: Callable[[FeedEnded], None],
                 on_escalation: Callable[[str], None]) -> None:
        super().__init__()
        self.head = head
        self.on_escalation = on_escalation
        head.on_all_ended = on_feed_ended
        self.shutting_down = False

    def on_receive(self, message: Any) -> Any:
        head = self.head
        match message:
            case ChildFailed(name=name) if name in SERVICES:
                self._escalate(f"{name} actor failed: {message.error}")
            case ShardLost():
                if not self.shutting_down:
                    head.replace(message)
            case FromShard(index=index, generation=generation, message=inner):
                if generation != head.fence.current(index):
                    return None
                match inner:
                    case FeedEnded():
                        head.feed_ended(index, inner)
                    case ShardFailed(reason=reason):
                        head.lost(index, generation, f"shard failed: {reason}")
                    case _:
                        logger.warning("supervisor: unexpected from shard {}: {!r}", index,
                                       inner)
            case SetPaused(pair=pair):
                handle = head.router.pairs.get(pair)
                if handle is None:
                    raise KeyError(f"no pair {pair!r}; trading: {', '.join(head.router.pairs)}")
                link = head.slots[int(handle.shard)].link
                if link is None:
                    raise ValueError(f"{pair}'s shard is being placed on another node; "
                                     "try again in a few seconds")
                handle.paused = message.paused
                link.send(SUPERVISOR, message)
            case AddPair() | RemovePair():
                raise ValueError("pairs cannot be added or removed while running on a cluster; "
                                 "restart with the new --pairs")
            case Shutdown():
                self.shutting_down = True
                head.shutting_down = True
            case _:
                logger.warning("supervisor: unexpected message {!r}", message)
        return None

    def _escalate(self, reason: str) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        logger.critical("ALERT escalation: {}; stopping the system", reason)
        self.on_escalation(reason)


class ServicesWatchdog(Watchdog):
    """The head's watchdog on a cluster: the pairs are watched inside their shards."""

    def children(self) -> list[tuple[str, pykka.ActorRef[Any], int]]:
        return [(name, ref, 0) for name, ref in self.router.services.items()
                if name != SUPERVISOR]


def is_remote(handle: PairHandle) -> bool:
    return isinstance(handle.ref, RemotePairRef)
