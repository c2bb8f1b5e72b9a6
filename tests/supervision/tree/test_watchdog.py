"""The watchdog's rounds: every child pinged once a round, in slices spread over the interval,
and a child that does not answer within the timeout reported hung under its generation."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest

from actors.messages import SUPERVISOR, ChildFailed, Ping
from actors.pair.pool import PairPool, PooledActor
from actors.router import Router
from supervision.tree.watchdog import SLICE_PINGS, Watchdog, ping
from tests.helpers import eventually


class Child(pykka.ThreadingActor):
    """Answers pings and counts them; ``"hang"`` holds its thread until ``release``."""

    def __init__(self, blocked: threading.Event | None = None,
                 release: threading.Event | None = None) -> None:
        super().__init__()
        self.pings = 0
        self.blocked = blocked or threading.Event()
        self.release = release or threading.Event()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            self.pings += 1
            return message
        if message == "hang":
            self.blocked.set()
            self.release.wait(10)
        return None


class Supervisor(pykka.ThreadingActor):
    def __init__(self, failures: list[ChildFailed]) -> None:
        super().__init__()
        self.failures = failures

    def on_receive(self, message: Any) -> Any:
        self.failures.append(message)


class Rounds:
    """Stands in for the watchdog's stop event: each wait is a pause between slices, counted;
    after ``slices`` pauses it stops the watchdog. Before each pause it waits until the pings
    sent so far were answered, so each slice's count is read exactly."""

    def __init__(self, children: list[pykka.ActorRef[Any]], slices: int) -> None:
        self.children = children
        self.left = slices
        self.pauses: list[float] = []
        self.pings_per_slice: list[int] = []
        self._seen = 0

    def wait(self, timeout: float) -> bool:
        total = sum(ref.proxy().pings.get(timeout=5) for ref in self.children)
        if self.pauses:
            self.pings_per_slice.append(total - self._seen)
        self._seen = total
        self.pauses.append(timeout)
        self.left -= 1
        return self.left < 0


@pytest.fixture
def children():
    refs = [Child.start() for _ in range(2 * SLICE_PINGS + 5)]
    yield refs
    for ref in refs:
        ref.stop(block=False)


def watchdog_for(refs: list[pykka.ActorRef[Any]], **kwargs: Any) -> tuple[Watchdog, Router]:
    router = Router()
    for i, ref in enumerate(refs):
        router.add_pair(f"P{i:03d}/USDT", 8).ref = ref
        router.pairs[f"P{i:03d}/USDT"].state = "running"
    return Watchdog(router, **kwargs), router


def test_a_round_pings_every_child_once_in_slices_spread_over_the_interval(children):
    watchdog, _ = watchdog_for(children, interval_s=0.9)
    rounds = Rounds(children, slices=6)  # two rounds of three slices
    watchdog._stop = rounds  # type: ignore[assignment]
    watchdog._run()
    assert rounds.pauses == pytest.approx([0.3] * 6 + [0.3])
    assert rounds.pings_per_slice == [SLICE_PINGS, SLICE_PINGS, 5] * 2
    assert [ref.proxy().pings.get(timeout=5) for ref in children] == [2] * len(children)


def test_a_small_system_is_pinged_all_at_once_each_interval():
    refs = [Child.start() for _ in range(3)]
    try:
        watchdog, _ = watchdog_for(refs, interval_s=1.0)
        rounds = Rounds(refs, slices=2)
        watchdog._stop = rounds  # type: ignore[assignment]
        watchdog._run()
        assert rounds.pauses == [1.0, 1.0, 1.0]
        assert rounds.pings_per_slice == [3, 3]
    finally:
        for ref in refs:
            ref.stop()


def test_a_child_that_does_not_answer_is_reported_hung_under_its_generation(children):
    failures: list[ChildFailed] = []
    supervisor = Supervisor.start(failures)
    blocked, release = threading.Event(), threading.Event()
    hung = Child.start(blocked, release)
    refs = [*children[:SLICE_PINGS + 3], hung, *children[SLICE_PINGS + 3:]]
    watchdog, router = watchdog_for(refs, interval_s=0.05, timeout_s=0.2)
    router.services[SUPERVISOR] = supervisor
    name = f"P{SLICE_PINGS + 3:03d}/USDT"
    router.pairs[name].generation = 4
    hung.tell("hang")
    assert blocked.wait(5), "the child to hang"
    watchdog.start()
    try:
        eventually(lambda: bool(failures), 5, "the hung child to be reported")
        assert {(f.name, f.generation) for f in failures} == {(name, 4)}
        assert "no heartbeat reply within 0.2 s" in failures[0].error
    finally:
        watchdog.stop()
        release.set()
        hung.stop()
        supervisor.stop()


class PooledChild(PooledActor):
    """A ``Child`` on the pair pool (pings only)."""

    def __init__(self, pool: PairPool) -> None:
        self.pool = pool
        super().__init__()
        self.pings = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            self.pings += 1
            return message
        return None


def test_a_ping_is_answered_on_a_thread_of_its_own_and_on_the_pair_pool():
    """The heartbeat's reply slot takes what both actor loops give an ask's future."""
    pool = PairPool(1).start()
    plain, pooled = Child.start(), PooledChild.start(pool)
    try:
        replies = [ping(plain), ping(pooled)]
        eventually(lambda: all(r.answered for r in replies), 5, "both pings to be answered")
        assert [ref.proxy().pings.get(timeout=5) for ref in (plain, pooled)] == [1, 1]
    finally:
        plain.stop()
        pooled.stop()
        pool.close()


def test_a_ping_left_in_a_stopping_actors_inbox_counts_as_answered_and_a_dead_one_raises():
    """Answered with an error is not hung (the actor is gone: its failure or stop reports
    it); a dead actor cannot be pinged at all, as with ``ask``."""
    blocked, release = threading.Event(), threading.Event()
    child = Child.start(blocked, release)
    child.tell("hang")
    assert blocked.wait(5)
    stopping = child.stop(block=False)
    reply = ping(child)  # behind the stop in the inbox: pykka's teardown fails it
    assert not reply.answered
    release.set()
    stopping.get(timeout=5)
    eventually(lambda: reply.answered, 5, "the queued ping to be failed by the teardown")
    with pytest.raises(pykka.ActorDeadError):
        ping(child)
