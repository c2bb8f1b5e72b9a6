"""Pair actors as tasks on a few worker threads (M:N), not a thread each.

Why: with a thread per pair, every tick woke its pair's thread, and 200 threads fought over
the GIL. At 200 pairs x 20 ticks/s that was about 3 context switches per tick, a third of
the CPU time in the kernel, and queues behind the GIL that set the p99. A pooled pair is
run by whichever worker is free: a tick for a busy pool is a deque append, and a wake-up
goes to one of a few warm threads.

What stays pykka's: a ``PooledActor`` is a pykka actor. Its ref, ``tell``/``ask``/``stop``,
futures, the ``ActorRegistry``, ``on_start``/``on_stop``/``on_failure`` and the failure rules
(a tell that raises kills the actor, an ask that raises answers the asker; queued asks of a
dead actor fail with ``ActorDeadError``) are unchanged. Only the loop differs: its inbox
puts the actor on the pool's ready queue instead of waking a thread of its own, and a worker
runs one turn of it (up to ``TURN_MESSAGES`` messages) at a time. The inbox's ``scheduled``
flag, set and cleared under the inbox's lock, keeps an actor on at most one worker.

One deliberate difference: a ``BaseException`` (``SystemExit`` from strategy code) fails only
its actor; pykka would stop every actor in the process.

The next turn on the same worker: an actor that becomes ready because a worker's turn sent it
a message runs next on that worker (its ``next`` slot), not on whichever worker the ready
queue wakes: a proposal goes from its pair to risk and on to execution (both pooled) on one
thread, without a wake-up and a hand-off of the GIL between threads for each (about 70 µs
each, measured as the actors' lag behind the threadless runtime). The sending turn is about
to end (a pair that proposed waits for the answer), the slot holds one actor (a second one
goes to the ready queue), and at most ``CHAIN_TURNS`` turns follow each other this way before
the worker takes the queue's next actor, so no ready actor waits behind a chain for long.

Hangs: a worker stuck in one turn for ``stall_s`` leaves the pool and a new worker takes its
place, so the other pairs keep ``size`` workers. The stuck actor stays where it is (as its
thread did before); the watchdog's heartbeat reports it and the supervisor fences and
replaces it. If the turn ever ends, the retired worker exits.
"""

from __future__ import annotations

import functools
import itertools
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pykka
from loguru import logger

TURN_MESSAGES = 64
"""Messages one actor handles before the next ready actor gets the worker (fairness)."""
TURN_S = 0.05
"""Wall time after which a turn ends at the next message (a pair draining ticks checks it
per tick too), so that only a single message this slow (a hung or very slow strategy) can
keep a worker for ``STALL_S``."""
STALL_S = 0.5
"""A turn this long means a stuck (or very slow) pair: its worker is replaced."""
MONITOR_S = 0.1
"""How often the pool looks for stuck workers."""
CHAIN_TURNS = 8
"""Turns a worker runs from its ``next`` slot before it takes the ready queue's next actor."""


def limits_for(heartbeat_timeout_s: float) -> tuple[float, float]:
    """The pool's ``(stall_s, monitor_s)`` for a watchdog that reports a pair hung after
    ``heartbeat_timeout_s`` without a heartbeat reply.

    A healthy pair queued behind a stuck one on the same worker answers its heartbeat only
    once the pool has replaced that worker: up to ``stall_s + monitor_s`` (and a thread
    start) later. Were that near the heartbeat timeout, the watchdog would restart the
    healthy neighbour too; so both derive from it (a quarter and an eighth of it, at most
    ``STALL_S`` and ``MONITOR_S``), and the replacement always comes well before the
    watchdog looks.
    """
    stall_s = min(STALL_S, heartbeat_timeout_s / 4)
    return stall_s, min(MONITOR_S, stall_s / 2)


class PooledInbox:
    """A pooled actor's inbox: any thread puts, one worker at a time takes."""

    __slots__ = ("_lock", "_messages", "_queue_turn", "_scheduled")

    def __init__(self) -> None:
        self._messages: deque[Any] = deque()
        self._lock = threading.Lock()
        self._scheduled = True  # until ``bind`` hands the actor its first turn
        self._queue_turn: Callable[[], None] = _unbound

    def bind(self, actor: PooledActor, pool: PairPool) -> None:
        """Give the actor its first turn (``on_start``); called once, by ``start``."""
        self._queue_turn = functools.partial(pool.ready, actor)
        pool.ready(actor)

    def put(self, envelope: Any) -> None:
        self._messages.append(envelope)
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        self._queue_turn()

    def take(self) -> Any | None:
        """Worker: the next message, or None."""
        messages = self._messages
        return messages.popleft() if messages else None

    def turn_ended(self) -> bool:
        """Worker: True when messages wait and the actor must run again; else it is
        unscheduled (the next ``put`` schedules it)."""
        with self._lock:
            if self._messages:
                return True
            self._scheduled = False
            return False

    # pykka's teardown and the mailbox gauge use these
    def get(self) -> Any:
        return self._messages.popleft()

    def empty(self) -> bool:
        return not self._messages

    def qsize(self) -> int:
        return len(self._messages)


def _unbound() -> None:
    raise RuntimeError("a pooled actor's inbox is used before the actor has started")


class PooledActor(pykka.ThreadingActor):
    """A pykka actor that runs on ``pool`` (set before ``__init__`` runs, e.g. as a class
    attribute or first thing in the subclass's ``__init__``); without one it runs on a
    thread of its own, as any ``ThreadingActor``."""

    pool: PairPool | None = None
    thread_name = "pooled-actor"
    """What the worker thread is called while it runs this actor (logs read it)."""
    doorbell: Any = None
    """An envelope, built once, that means "run ``on_doorbell``": a turn that takes it calls
    that directly, without pykka's dispatch and ``on_receive``'s tests (a pair's tick ring:
    at 1,000 pairs nearly every turn is one)."""

    def on_doorbell(self) -> None:
        """What ``doorbell`` asks for (only called where ``doorbell`` is set)."""
        raise NotImplementedError

    def _create_actor_inbox(self) -> Any:  # type: ignore[override]  # pykka's is static
        return PooledInbox() if self.pool is not None else super()._create_actor_inbox()

    def _start_actor_loop(self) -> None:
        if self.pool is None:
            super()._start_actor_loop()
            return
        self._pool_started = False
        self.actor_inbox.bind(self, self.pool)

    def _pool_turn(self) -> bool:
        """Run on a worker: ``on_start`` on the first turn, then up to ``TURN_MESSAGES``
        messages or ``TURN_S``; True when the actor must run again."""
        stopped = self.actor_stopped
        if not self._pool_started:
            self._pool_started = True
            self._actor_loop_setup()  # an exception there stops the actor (pykka's rule)
        inbox: PooledInbox = self.actor_inbox
        take, handle, clock = inbox.take, self._pool_handle, time.monotonic
        doorbell = self.doorbell
        ends = clock() + TURN_S
        for _ in range(TURN_MESSAGES):
            if stopped.is_set():
                break
            envelope = take()
            if envelope is None:
                break
            if envelope is doorbell:
                try:
                    self.on_doorbell()
                except BaseException:  # noqa: BLE001 - as a tell that raises
                    self._pool_failed()
            else:
                handle(envelope)
            if clock() >= ends:
                break
        if stopped.is_set():
            self._actor_loop_teardown()  # queued asks fail with ActorDeadError
            return False  # stays scheduled: a dead actor never runs again
        return inbox.turn_ended()

    def _pool_handle(self, envelope: Any) -> None:
        """pykka's loop body for one message (``ThreadingActor._actor_loop_running``)."""
        reply_to = envelope.reply_to
        try:
            response = self._handle_receive(envelope.message)
        except BaseException:  # noqa: BLE001 - see the module docstring
            if reply_to is not None:
                logger.debug("{}: exception returned to the asker", self)
                reply_to.set_exception()
                return
            self._pool_failed()
            return
        if reply_to is not None:
            reply_to.set(response)

    def _pool_failed(self) -> None:
        """A told message raised (the exception being handled): the actor stops, as pykka's
        loop does it."""
        exc_info = sys.exc_info()
        self._handle_failure(*exc_info)
        try:
            self.on_failure(*exc_info)
        except Exception:  # noqa: BLE001 - pykka's rule: log it, the actor is stopped
            self._handle_failure(*sys.exc_info())


class _Worker:
    __slots__ = ("busy_since", "chain", "next", "next_lock", "retired", "running", "thread")

    def __init__(self) -> None:
        self.busy_since = 0.0
        """``time.monotonic()`` when the current turn began; 0.0 while idle."""
        self.running: PooledActor | None = None
        self.next: PooledActor | None = None
        """An actor this worker's turn made ready: it runs next, here (see the module doc)."""
        self.next_lock = threading.Lock()
        """Taking ``next`` (the worker, or the monitor from a stuck worker) holds this: an
        actor is taken once. Only the worker's own thread fills the slot, and only while it
        is empty, so that needs no lock."""
        self.chain = 0
        """Turns run from ``next`` in a row."""
        self.retired = False
        self.thread: threading.Thread | None = None

    def take_next(self) -> PooledActor | None:
        with self.next_lock:
            actor, self.next = self.next, None
        return actor


class PairPool:
    """``size`` worker threads running ``PooledActor`` turns from one ready queue."""

    def __init__(self, size: int, *, stall_s: float = STALL_S, monitor_s: float = MONITOR_S,
                 name: str = "pair-worker") -> None:
        if size < 1:
            raise ValueError(f"a pair pool needs at least one worker, got {size}")
        self.size = size
        self.stall_s = stall_s
        self.monitor_s = monitor_s
        self.name = name
        self.replaced = 0
        """Workers retired because a turn outlasted ``stall_s``."""
        self._ready: queue.SimpleQueue[PooledActor | None] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._numbers = itertools.count(1)
        self._monitor: threading.Thread | None = None
        self._local = threading.local()
        """``worker``: the ``_Worker`` the current thread is, on this pool's threads."""

    def start(self) -> PairPool:
        with self._lock:
            for _ in range(self.size):
                self._spawn()
        self._monitor = threading.Thread(target=self._watch, name=f"{self.name}-monitor",
                                         daemon=True)
        self._monitor.start()
        return self

    def ready(self, actor: PooledActor) -> None:
        """Queue one turn of ``actor`` (its inbox calls this): next on this worker when a
        worker's turn made it ready and its slot is free, else on the ready queue."""
        worker: _Worker | None = getattr(self._local, "worker", None)
        if worker is not None and worker.next is None and worker.chain < CHAIN_TURNS:
            worker.next = actor
            return
        self._ready.put(actor)

    @property
    def workers(self) -> int:
        """Live workers, the stuck ones included."""
        with self._lock:
            return sum(1 for w in self._workers if w.thread is not None and w.thread.is_alive())

    def close(self, timeout: float = 2.0) -> None:
        """Stop the workers once the actors are stopped; a stuck one is left (daemon)."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            workers = list(self._workers)
        for _ in workers:
            self._ready.put(None)
        deadline = time.monotonic() + timeout
        for worker in workers:
            if worker.thread is not None and not worker.retired:
                worker.thread.join(max(0.0, deadline - time.monotonic()))
        if self._monitor is not None:
            self._monitor.join(max(0.0, deadline - time.monotonic()))

    def _spawn(self) -> None:
        """Start a worker (the caller holds ``_lock``)."""
        worker = _Worker()
        worker.thread = threading.Thread(target=self._work, args=(worker,), daemon=True,
                                         name=f"{self.name}-{next(self._numbers)}")
        self._workers.append(worker)
        worker.thread.start()

    def _work(self, worker: _Worker) -> None:
        get, put, clock = self._ready.get, self._ready.put, time.monotonic
        thread = threading.current_thread()
        own_name = thread.name
        self._local.worker = worker
        while True:
            actor = worker.take_next() if worker.next is not None else None
            if actor is not None:
                worker.chain += 1
            else:
                worker.chain = 0
                actor = get()
                if actor is None:
                    return
            worker.running = actor
            worker.busy_since = clock()
            thread.name = actor.thread_name
            try:
                again = actor._pool_turn()
            except BaseException:  # noqa: BLE001 - never lose the worker to one actor
                logger.exception("{}: a pooled actor's turn failed", actor)
                again = False
            worker.busy_since = 0.0
            worker.running = None
            thread.name = own_name
            if again:
                put(actor)
            if worker.retired:
                stranded = worker.take_next()
                if stranded is not None:  # made ready by the turn that got stuck
                    put(stranded)
                return

    def _watch(self) -> None:
        while not self._closed.wait(self.monitor_s):
            self.replace_stuck(time.monotonic())

    def replace_stuck(self, now: float) -> None:
        """Retire every worker whose turn began over ``stall_s`` before ``now`` and start one
        in its place (counted in ``replaced``)."""
        with self._lock:
            for worker in list(self._workers):
                since = worker.busy_since
                if worker.retired or not since or now - since < self.stall_s:
                    continue
                worker.retired = True
                self.replaced += 1
                stranded = worker.take_next()
                if stranded is not None:  # ready, but behind the stuck turn: run it elsewhere
                    self._ready.put(stranded)
                logger.warning("{} has run one turn for {:.1f} s; another worker takes the "
                               "other pairs", getattr(worker.running, "thread_name", "a pair"),
                               now - since)
                self._spawn()
            self._workers = [w for w in self._workers
                             if not w.retired or (w.thread is not None and w.thread.is_alive())]
