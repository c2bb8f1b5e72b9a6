"""The pair pool: pooled actors keep pykka's semantics (order, one message at a time, the
failure rules) while a few workers run them, and a stuck actor costs only its own worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
from pykka._envelope import Envelope

from actors.pair.pool import (
    CHAIN_TURNS,
    MONITOR_S,
    STALL_S,
    TURN_MESSAGES,
    PairPool,
    PooledActor,
    limits_for,
)
from tests.helpers import eventually


class Recorder(PooledActor):
    """Records what it handles; ``("block", event[, entered])`` sets ``entered`` and waits for
    the event, ``"boom"`` raises,
    ``"exit"`` raises SystemExit, ``"count"`` answers how many it has handled."""

    def __init__(self, pool: PairPool | None, name: str = "recorder",
                 log: list[tuple[str, Any]] | None = None) -> None:
        self.pool = pool
        self.thread_name = name
        super().__init__()
        self.log = log if log is not None else []
        """Shared by several actors: the order in which the pool ran their messages."""
        self.seen: list[Any] = []
        self.inside = 0
        self.most_inside = 0
        self.failed = threading.Event()
        self.stopped = threading.Event()

    def on_receive(self, message: Any) -> Any:
        self.log.append((self.thread_name, message))
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            if message == "boom":
                raise ValueError("boom")
            if message == "exit":
                raise SystemExit(3)
            if message == "count":
                return len(self.seen)
            if message == "thread":
                return threading.current_thread().name
            if isinstance(message, tuple) and message[0] == "block":
                for entered in message[2:]:
                    entered.set()
                message[1].wait(10)
            self.seen.append(message)
            return message
        finally:
            self.inside -= 1

    def on_failure(self, *exc_info: object) -> None:
        self.failed.set()

    def on_stop(self) -> None:
        self.stopped.set()


class Relay(PooledActor):
    """Notes the thread each message runs on, then tells ``to`` the message; ``("relay",
    payload, hold)`` tells ``payload`` and then waits for the event ``hold``. ``"ball"``
    goes back and forth between two relays for ever (``to`` each other)."""

    def __init__(self, pool: PairPool, to: pykka.ActorRef[Any] | None = None) -> None:
        self.pool = pool
        super().__init__()
        self.to = to
        self.threads: list[int] = []
        self.handled = threading.Event()

    def on_receive(self, message: Any) -> Any:
        self.threads.append(threading.get_ident())
        if message == "set-to":
            return None
        if isinstance(message, tuple) and message[0] == "to":
            self.to = message[1]
            return None
        if isinstance(message, tuple) and message[0] == "relay":
            assert self.to is not None
            self.to.tell(message[1])
            message[2].wait(10)
        elif self.to is not None:
            self.to.tell(message)
        self.handled.set()
        return None


@pytest.fixture
def pool() -> Iterator[PairPool]:
    pool = PairPool(2, stall_s=0.05, monitor_s=0.01).start()
    yield pool
    pool.close()


def test_a_pooled_actor_handles_tells_in_order_and_answers_asks_on_a_worker(pool):
    """Tells keep their order; the ask is answered on a pool worker named after the actor."""
    ref = Recorder.start(pool, "BTC-actor")
    for i in range(200):
        ref.tell(i)
    assert ref.ask("count", timeout=5) == 200
    assert ref.proxy().seen.get(timeout=5) == list(range(200))
    assert ref.ask("thread", timeout=5) == "BTC-actor"
    ref.stop(timeout=5)


def test_an_actor_is_never_run_by_two_workers_at_once(pool):
    """Eight threads tell one actor at once: each sender's messages stay in order and the
    actor never has two messages in hand."""
    ref = Recorder.start(pool)
    senders = [threading.Thread(target=lambda s=s: [ref.tell((s, i)) for i in range(500)])
               for s in range(8)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(10)
    assert ref.ask("count", timeout=10) == 4000
    actor = ref.proxy()
    seen = actor.seen.get(timeout=5)
    for s in range(8):
        assert [i for who, i in seen if who == s] == list(range(500))
    assert actor.most_inside.get(timeout=5) == 1
    ref.stop(timeout=5)


def test_a_tell_that_raises_kills_only_its_actor(pool):
    """pykka's rule: on_failure runs and the ref is dead; the neighbour on the same pool
    answers as before."""
    crashing, neighbour = Recorder.start(pool), Recorder.start(pool)
    actor = crashing.proxy()
    failed = actor.failed.get(timeout=5)
    crashing.tell("boom")
    assert failed.wait(5)
    eventually(lambda: not crashing.is_alive(), timeout=5, message="the actor to be dead")
    with pytest.raises(pykka.ActorDeadError):
        crashing.tell("after")
    assert neighbour.ask("count", timeout=5) == 0
    neighbour.stop(timeout=5)


def test_an_ask_that_raises_answers_the_asker_and_the_actor_lives_on(pool):
    ref = Recorder.start(pool)
    with pytest.raises(ValueError, match="boom"):
        ref.ask("boom", timeout=5)
    assert ref.is_alive()
    assert ref.ask("count", timeout=5) == 0
    ref.stop(timeout=5)


def test_a_system_exit_in_a_tell_fails_its_actor_not_every_actor(pool):
    """pykka would stop every actor in the process; the pool fails only the one."""
    exiting, neighbour = Recorder.start(pool), Recorder.start(pool)
    failed = exiting.proxy().failed.get(timeout=5)
    exiting.tell("exit")
    assert failed.wait(5)
    assert neighbour.ask("count", timeout=5) == 0
    neighbour.stop(timeout=5)


class Rung(Recorder):
    """A Recorder with a doorbell: each ring runs ``on_doorbell`` (which raises once
    ``fail_on_ring`` is set), never ``on_receive``."""

    doorbell = Envelope("ring")

    def __init__(self, pool: PairPool) -> None:
        super().__init__(pool)
        self.rings = 0
        self.fail_on_ring = False

    def on_doorbell(self) -> None:
        self.rings += 1
        if self.fail_on_ring:
            raise ValueError("the ring's work failed")


def test_a_doorbell_runs_on_doorbell_in_order_with_the_other_messages(pool):
    """The prebuilt envelope skips pykka's dispatch, not the order: rings and tells come in
    the order they were put, and an equal message that is not the envelope is a message."""
    ref = Rung.start(pool)
    actor = ref.proxy()
    inbox = ref.actor_inbox
    ref.tell(1)
    inbox.put(Rung.doorbell)
    inbox.put(Rung.doorbell)
    ref.tell("ring")  # the same message in another envelope: on_receive's
    assert ref.ask("count", timeout=5) == 2
    assert actor.rings.get(timeout=5) == 2
    assert actor.seen.get(timeout=5) == [1, "ring"]
    ref.stop(timeout=5)


def test_a_doorbell_that_raises_kills_only_its_actor_as_a_tell_does(pool):
    ref, neighbour = Rung.start(pool), Recorder.start(pool)
    actor = ref.proxy()
    failed = actor.failed.get(timeout=5)
    actor.fail_on_ring = True
    ref.actor_inbox.put(Rung.doorbell)
    assert failed.wait(5)
    eventually(lambda: not ref.is_alive(), timeout=5, message="the actor to be dead")
    assert neighbour.ask("count", timeout=5) == 0
    neighbour.stop(timeout=5)


def test_a_stuck_actor_costs_its_worker_only_and_the_worker_is_replaced():
    """One worker: while an actor blocks in its turn, nothing else could run, until the pool
    retires the stuck worker and starts another. Once the turn ends, the retired worker
    leaves and the pool is back to its size."""
    pool = PairPool(1, stall_s=0.05, monitor_s=0.01).start()
    try:
        stuck, other = Recorder.start(pool), Recorder.start(pool)
        release, entered = threading.Event(), threading.Event()
        stuck.tell(("block", release, entered))
        assert entered.wait(5)
        assert other.ask("count", timeout=5) == 0
        assert pool.replaced == 1
        assert pool.workers == 2
        release.set()
        assert stuck.ask("count", timeout=5) == 1
        eventually(lambda: pool.workers == 1, timeout=5, message="the retired worker to leave")
        for ref in (stuck, other):
            ref.stop(timeout=5)
    finally:
        pool.close()


def test_a_busy_actor_yields_the_worker_after_a_turn():
    """One worker, queued in this order: a gate, 1,000 tells to A, an ask to B. B runs after
    A's first turn of ``TURN_MESSAGES``, not after A's whole backlog."""
    pool = PairPool(1, stall_s=60).start()
    log: list[tuple[str, Any]] = []
    try:
        gate_actor, busy, other = (Recorder.start(pool, name, log)
                                   for name in ("gate", "A", "B"))
        for ref in (gate_actor, busy, other):
            assert ref.ask("count", timeout=5) == 0  # started and idle
        log.clear()
        gate = threading.Event()
        gate_actor.tell(("block", gate))
        for i in range(1000):
            busy.tell(i)
        answer = other.ask("count", block=False)
        gate.set()
        assert answer.get(timeout=5) == 0
        assert busy.ask("count", timeout=5) == 1000
        names = [name for name, _ in log]
        assert names.index("B") == 1 + TURN_MESSAGES, "B waited for more than one turn of A"
        for ref in (gate_actor, busy, other):
            ref.stop(timeout=5)
    finally:
        pool.close()


def test_stop_runs_on_stop_and_later_asks_fail_as_dead(pool):
    ref = Recorder.start(pool)
    stopped = ref.proxy().stopped.get(timeout=5)
    assert ref.stop(timeout=5) is True
    assert stopped.is_set()
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("count", timeout=5)


def test_without_a_pool_the_actor_has_a_thread_of_its_own():
    ref = Recorder.start(None, "own")
    try:
        assert ref.ask("thread", timeout=5) != "own"
        assert ref.ask("count", timeout=5) == 0
    finally:
        ref.stop(timeout=5)


def test_a_pool_needs_a_worker():
    with pytest.raises(ValueError, match="at least one worker"):
        PairPool(0)


def test_the_stall_limit_derives_from_the_heartbeat_timeout_so_neighbours_answer_in_time():
    """A healthy pair behind a stuck one waits at most stall + monitor: half the timeout or
    less, and never more than the defaults."""
    assert limits_for(5.0) == (STALL_S, MONITOR_S)
    for timeout in (0.2, 0.5, 1.0, 2.0, 60.0):
        stall_s, monitor_s = limits_for(timeout)
        assert stall_s + monitor_s <= timeout / 2
        assert (stall_s, monitor_s) <= (STALL_S, MONITOR_S)
    assert limits_for(0.5) == (0.125, 0.0625)


def test_an_actor_made_ready_by_a_turn_runs_next_on_the_same_worker(pool):
    """A proposal's way: the pair's turn tells risk, which runs right after on the pair's
    worker, not on another thread woken for it."""
    last = Relay.start(pool)
    first = Relay.start(pool, last)
    for i in range(50):
        done = last.proxy().handled.get(timeout=5)
        done.clear()
        first.tell(i)
        assert done.wait(5)

    assert first.proxy().threads.get(timeout=5) == last.proxy().threads.get(timeout=5)
    first.stop(timeout=5)
    last.stop(timeout=5)


def test_an_actor_made_ready_behind_a_stuck_turn_runs_on_another_worker():
    """The turn that made it ready hangs: the pool retires that worker and hands the actor
    waiting in its slot to the ready queue, where another worker runs it."""
    pool = PairPool(2, stall_s=0.05, monitor_s=0.01).start()
    hold = threading.Event()
    try:
        last = Relay.start(pool)
        first = Relay.start(pool, last)
        done = last.proxy().handled.get(timeout=5)
        first.tell(("relay", "after", hold))

        assert done.wait(5)
        assert not hold.is_set()
        assert pool.replaced >= 1
    finally:
        hold.set()
        for ref in pykka.ActorRegistry.get_by_class(Relay):
            ref.stop(timeout=5)
        pool.close()


def test_actors_that_keep_making_each_other_ready_leave_the_worker_to_others_in_time():
    """Two relays play ball for ever on a pool of one worker: after ``CHAIN_TURNS`` turns
    the worker takes the ready queue's next actor, so a third one is still served."""
    pool = PairPool(1, stall_s=5.0, monitor_s=1.0).start()
    try:
        ping, pong = Relay.start(pool), Relay.start(pool)
        ping.tell(("to", pong))
        pong.tell(("to", ping))
        assert ping.ask("set-to", timeout=5) is None and pong.ask("set-to", timeout=5) is None
        ping.tell("ball")
        eventually(lambda: len(pong.proxy().threads.get(timeout=5)) > 10 * CHAIN_TURNS,
                   timeout=5, message="the ball to go back and forth")
        third = Recorder.start(pool)

        assert third.ask("count", timeout=5) == 0
    finally:
        for ref in [*pykka.ActorRegistry.get_by_class(Relay),
                    *pykka.ActorRegistry.get_by_class(Recorder)]:
            ref.stop(timeout=5)
        pool.close()
