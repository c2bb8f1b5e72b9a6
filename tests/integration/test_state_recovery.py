"""The state actor fails in the middle of writes and loses nothing acknowledged; with group
commit it never publishes a change before the change is committed; on SQLite and on
PostgreSQL."""

from __future__ import annotations

import itertools

import attrs
import pytest

from actors.market.scenarios import scenario_ticks
from actors.messages import Fill, GetPortfolio, OrderFilled, ServiceRestarted, Side
from actors.router import Router
from actors.state.actor import StateActor
from actors.state.core import StateCore
from actors.state.store import StateStore, StateStoreError
from supervision import TradingSystem, build_config
from supervision.runtime.threadless import SyncRuntime
from tests.helpers import EventLog, db_rows

START_MS = 1_700_000_000_000


def fills_of(events):
    return [(e.fill.ts_ms, e.fill.side, e.fill.price, e.fill.amount)
            for e in events if isinstance(e, OrderFilled)]


def test_a_failed_commit_reloads_state_and_every_fill_is_recorded_once(state_db, monkeypatch):
    """Two batch writes fail after the ledger changed (the one that would store the 3rd order,
    and the next one from the 7th on: how many orders a batch holds depends on the speed):
    state reloads, handles the whole uncommitted batch again; fills equal the threadless run
    and each is stored once."""
    ticks = scenario_ticks("chop", "BTC/USDT", seed=11, n=1500, start_ms=START_MS)
    values = {"pairs": "BTC/USDT", "speed": "max", "seed": 1}
    reference = SyncRuntime(build_config({}, {**values, "state_db": ":memory:"}), ticks)
    expected: list[object] = []
    reference.on_event = expected.append
    reference.run()
    assert len(fills_of(expected)) > 10

    real_write_books = StateStore.write_books
    stored: set[str] = set()
    thresholds = [3, 7]
    retrying = False

    def flaky_write_books(self, **kwargs):
        nonlocal retrying
        orders = list(kwargs.get("orders", ()))
        new = {o.order_id for o in orders} - stored
        # Never the retry of a failed batch: that failing too ends the actor, by design.
        if new and thresholds and not retrying and len(stored) + len(new) >= thresholds[0]:
            thresholds.pop(0)
            retrying = True
            raise StateStoreError("disk hiccup (injected)")
        retrying = False
        real_write_books(self, **{**kwargs, "orders": orders})
        stored.update(new)

    monkeypatch.setattr(StateStore, "write_books", flaky_write_books)
    # Batches of 5 ms, so that the run holds enough of them for both failures: with the
    # paper default (20 ms) its 1,500 ticks at full speed may fit in two.
    monkeypatch.setattr("actors.state.actor.ANSWER_FIRST_BATCH_S", 0.005)
    db = state_db
    log = EventLog()
    system = TradingSystem(build_config({}, {**values, "state_db": db}), source=ticks)
    system.subscribe(log)
    with system:
        assert system.wait(60)
    status = system.status()

    assert [e.restarts for e in log.of(ServiceRestarted)] == [1, 2]
    assert status.state == "finished"
    assert fills_of(log.events) == fills_of(expected)
    [stored] = db_rows(db, "SELECT COUNT(*), COUNT(DISTINCT fill_id) FROM fills")
    assert stored == (len(fills_of(expected)), len(fills_of(expected)))


def test_a_state_actor_that_keeps_failing_stops_the_system(state_db, monkeypatch):
    """Past the restart limit the supervisor escalates: the run ends as failed."""
    def broken(self, *args, **kwargs):
        raise StateStoreError("disk gone (injected)")

    monkeypatch.setattr(StateStore, "write_books", broken)
    ticks = scenario_ticks("chop", "BTC/USDT", seed=11, n=1500, start_ms=START_MS)

    def endless():  # a feed that never ends: only the escalation can end this run
        yield from ticks
        last = ticks[-1]
        for i in itertools.count(1):
            yield attrs.evolve(last, ts_ms=last.ts_ms + i)

    config = build_config({}, {"pairs": "BTC/USDT", "speed": "max",
                               "state_db": state_db, "restart": {"max_restarts": 2}})
    system = TradingSystem(config, source=endless())
    with system:
        assert system.wait(30)

    assert system.status().state == "failed"
    assert "state" in system.error


def test_a_fill_is_published_only_after_it_is_committed(state_db):
    """Group commit: when a subscriber hears of a fill, another connection already reads it."""
    ticks = scenario_ticks("chop", "BTC/USDT", seed=11, n=1500, start_ms=START_MS)
    db = state_db
    seen: list[bool] = []

    def check(event):
        if isinstance(event, OrderFilled):
            rows = db_rows(db, "SELECT 1 FROM fills WHERE fill_id = ?", event.fill.fill_id)
            seen.append(bool(rows))

    config = build_config({}, {"pairs": "BTC/USDT", "speed": "max", "seed": 1, "state_db": db})
    system = TradingSystem(config, source=ticks)
    system.subscribe(check)
    with system:
        assert system.wait(60)

    assert len(seen) > 10
    assert all(seen)


def test_a_commit_failing_past_recovery_while_answering_a_query_kills_the_state_actor(
        state_db, monkeypatch):
    """An ask would hand the error back and keep the actor alive with memory ahead of the
    file: the query fails, and the actor refuses everything after it (so a tell kills it)."""
    core = StateCore.open(state_db, "USDT", {"USDT": 10_000.0})
    actor = StateActor(core, Router(), reopen=lambda: core, may_restart=lambda now: False)
    actor.actor_inbox.put(object())  # the inbox is not drained: the fill waits for its commit
    fill = Fill(fill_id="f-1", order_id="o-1", pair="BTC/USDT", side=Side.BUY, amount=1.0,
                price=100.0, fee=0.0, ts_ms=1_000)
    actor.on_receive(OrderFilled(fill=fill))

    def broken(self, **kwargs):
        raise StateStoreError("disk gone (injected)")

    monkeypatch.setattr(StateStore, "write_books", broken)
    with pytest.raises(StateStoreError, match="disk gone"):
        actor.on_receive(GetPortfolio())
    with pytest.raises(StateStoreError, match="disk gone"):
        actor.on_receive(OrderFilled(fill=fill))
    core.close()
