"""When the state actor's answers go out: after the commit (live orders) or at once with the
events after the commit (paper trading), and a recovery never sends an answer twice; on
SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from actors.messages import (
    EVENTS,
    RISK,
    Fill,
    GetPortfolio,
    MarkPrices,
    OrderFilled,
    Side,
)
from actors.router import Router
from actors.state.actor import ANSWER_FIRST_BATCH_S, BATCH_S, StateActor
from actors.state.core import StateCore
from actors.state.store import StateStore, StateStoreError
from tests.helpers import EventLog, db_rows

PAIR = "BTC/USDT"


class RecordingRouter(Router):
    """Records every tell with the number of fills committed to ``db`` at that moment."""

    def __init__(self, db: str) -> None:
        super().__init__()
        self.db = db
        self.sent: list[tuple[str, str, int]] = []

    def tell(self, to: str, message: object) -> None:
        committed = db_rows(self.db, "SELECT COUNT(*) FROM fills")[0][0]
        self.sent.append((to, type(message).__name__, committed))

    def to(self, recipient: str) -> list[tuple[str, int]]:
        return [(kind, committed) for to, kind, committed in self.sent if to == recipient]


def _fill(n: int) -> OrderFilled:
    return OrderFilled(fill=Fill(fill_id=f"f-{n}", order_id=f"o-{n}", pair=PAIR, side=Side.BUY,
                                 amount=0.01, price=100.0 + n, fee=0.0, ts_ms=1_000 * n))


def _actor(db: str, answer_first: bool) -> tuple[StateActor, RecordingRouter]:
    core = StateCore.open(db, "USDT", {"USDT": 10_000.0})
    router = RecordingRouter(db)
    # No batch closes by its age here: the recording router takes a connection per tell.
    actor = StateActor(core, router, reopen=lambda: StateCore.open(db, "USDT", {}),
                       may_restart=lambda now: True, answer_first=answer_first, batch_s=60.0)
    return actor, router


def test_answer_first_tells_risk_and_the_pair_before_the_commit_and_events_after(state_db):
    actor, router = _actor(state_db, answer_first=True)
    actor.on_receive(_fill(1))
    before_commit = list(router.sent)
    actor.on_receive(GetPortfolio())  # a query commits the open batch first
    actor.on_stop()

    assert before_commit == [(RISK, "PortfolioChanged", 0), (PAIR, "PositionChanged", 0)]
    assert router.to(EVENTS) == [("OrderFilled", 1)]


def test_durable_first_tells_nobody_before_the_commit(state_db):
    actor, router = _actor(state_db, answer_first=False)
    actor.on_receive(_fill(1))  # the inbox is empty: the batch is committed at once
    actor.on_stop()

    assert router.sent == [(RISK, "PortfolioChanged", 1), (PAIR, "PositionChanged", 1),
                           (EVENTS, "OrderFilled", 1)]


def test_a_recovery_after_answers_went_out_sends_each_answer_once(state_db, monkeypatch):
    """The second fill's write fails: the batch is handled again from the database; the first
    fill's answers are not repeated, the second's go out once, both events after the commit."""
    actor, router = _actor(state_db, answer_first=True)
    actor.on_receive(_fill(1))
    real_insert = StateStore.insert_fill
    failures = {"left": 1}

    def flaky_insert(self, fill):
        if fill.fill_id == "f-2" and failures["left"]:
            failures["left"] -= 1
            raise StateStoreError("disk hiccup (injected)")
        return real_insert(self, fill)

    monkeypatch.setattr(StateStore, "insert_fill", flaky_insert)
    actor.on_receive(_fill(2))
    actor.on_stop()

    assert [kind for kind, _ in router.to(PAIR)] == ["PositionChanged", "PositionChanged"]
    assert [kind for kind, _ in router.to(RISK)] == ["PortfolioChanged", "PortfolioChanged"]
    assert router.to(EVENTS) == [("ServiceRestarted", 0), ("OrderFilled", 2),
                                 ("OrderFilled", 2)]
    assert db_rows(state_db, "SELECT fill_id FROM fills ORDER BY fill_id") == [
        ("f-1",), ("f-2",)]


def test_an_old_duplicate_is_stored_and_booked_once_when_fill_rows_go_with_the_commit(
        state_db, monkeypatch):
    """Answer first on a server sends a fill's row with the batch's commit, not on a round trip
    of its own (``StateStore.defer_inserts``). A fill id that the ledger forgot but the database
    holds then fails the commit, and the batch is handled again with a check per fill. On
    SQLite the row is checked in place. Either way the duplicate is stored and booked once."""
    monkeypatch.setattr("actors.state.ledger.RECENT_FILLS", 1)
    monkeypatch.setattr("actors.state.store.RECENT_FILLS", 1)
    actor, router = _actor(state_db, answer_first=True)
    on_server = actor.core.store.on_server
    assert actor.core.store.defer_inserts is on_server
    actor.on_receive(_fill(1))
    actor.on_receive(_fill(2))
    actor.on_receive(GetPortfolio())  # commits f-1 and f-2; the ledger now remembers f-2 only
    actor.on_receive(_fill(1))
    actor.on_receive(_fill(3))
    actor.on_stop()

    assert actor.restarts == (1 if on_server else 0)
    # On a server the pair heard of the duplicate before the commit refused it (answer first:
    # paper trading, whose own exchange makes each fill once); its next book corrects it.
    assert len(router.to(PAIR)) == (4 if on_server else 3)
    assert db_rows(state_db, "SELECT fill_id FROM fills ORDER BY fill_id") == [
        ("f-1",), ("f-2",), ("f-3",)]
    reopened = StateCore.open(state_db, "USDT", {})
    stored = reopened.ledger.balances
    reopened.close()
    spent = 0.01 * (101.0 + 102.0 + 103.0)
    for balances in (actor.core.ledger.balances, stored):
        assert balances["USDT"] == pytest.approx(10_000.0 - spent)
        assert balances["BTC"] == pytest.approx(0.03)


def test_an_open_batch_is_committed_without_another_message(state_db):
    """Answer first commits on no drained inbox: the actor's ringer thread closes the batch."""
    db = state_db
    core = StateCore.open(db, "USDT", {"USDT": 10_000.0})
    router = Router()
    log = EventLog()
    router.subscribe(log)
    ref = StateActor.start(core, router, reopen=lambda: core, may_restart=lambda now: False,
                           batch_s=0.02, answer_first=True)
    try:
        ref.tell(_fill(1))
        log.wait_for(lambda events: any(isinstance(e, OrderFilled) for e in events),
                     timeout=10, message="the fill's event after its commit")
        assert db_rows(db, "SELECT COUNT(*) FROM fills") == [(1,)]
    finally:
        ref.stop(timeout=10)


def test_reading_a_pair_s_mark_lets_the_pair_send_its_next(state_db):
    actor, router = _actor(state_db, answer_first=True)
    handle = router.add_pair(PAIR, max_inflight=8)
    handle.mark_unread = True
    actor.on_receive(MarkPrices(ts_ms=5_000, marks=((PAIR, 101.0),)))
    actor.on_stop()

    assert handle.mark_unread is False


def test_answer_first_keeps_a_batch_open_longer_than_durable_first(state_db):
    """Durable first trades on its commits, so they come every ``BATCH_S``; answer first's
    only feed the events' subscribers, and fewer, larger commits cost less CPU (see
    ``ANSWER_FIRST_BATCH_S``). A batch size given by the caller wins either way."""
    windows = {}
    for answer_first in (True, False):
        core = StateCore.open(state_db, "USDT", {"USDT": 10_000.0})
        actor = StateActor(core, Router(), reopen=lambda c=core: c,
                           may_restart=lambda now: True, answer_first=answer_first)
        windows[answer_first] = actor.batch_s
        given = StateActor(core, Router(), reopen=lambda c=core: c,
                           may_restart=lambda now: True, answer_first=answer_first, batch_s=0.5)
        assert given.batch_s == 0.5
        core.close()
    assert windows == {True: ANSWER_FIRST_BATCH_S, False: BATCH_S}
    assert ANSWER_FIRST_BATCH_S > BATCH_S
