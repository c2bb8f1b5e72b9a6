"""The state core, on SQLite and on PostgreSQL: who hears about each change, a second run
continuing the first, group commit and exactly-once fills beyond the ledger's window."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.messages import (
    EVENTS,
    RISK,
    AuditRecord,
    ClosedTrade,
    Envelope,
    ExitReason,
    Fill,
    FillReplaced,
    GetAudit,
    GetBalances,
    GetEquity,
    GetFills,
    GetOrders,
    GetPairBook,
    GetPortfolio,
    GetRiskStatus,
    GetTrades,
    MarkPrices,
    Order,
    OrderFilled,
    OrderSettled,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PairBook,
    PairGeneration,
    Ping,
    PortfolioChanged,
    PositionChanged,
    PositionClosed,
    RaisePeak,
    RequestBook,
    RequestPortfolio,
    Side,
    StrategyAssigned,
    StrategySpec,
)
from actors.state.core import StateCore
from actors.state.store import StateStoreError, open_store
from tests.helpers import db_rows

BTC = "BTC/USDT"
ETH = "ETH/USDT"
FUNDING = {"USDT": 10_000.0}
SPEC = StrategySpec(
    path="aggregate",
    members=(
        (StrategySpec.of("ema_cross", fast=5, slow=20), 0.6),
        (StrategySpec.of("rsi_reversion", bands=(30, 70)), 0.4),
    ),
)


def an_order(
    order_id: str,
    side: Side,
    *,
    reason: ExitReason = ExitReason.ENTRY,
    status: OrderStatus = OrderStatus.OPEN,
    updated_ms: int = 1_000,
) -> Order:
    return Order(
        order_id=order_id,
        pair=BTC,
        side=side,
        order_type=OrderType.MARKET,
        reason=reason,
        amount=1.0,
        status=status,
        created_ms=1_000,
        updated_ms=updated_ms,
    )


def filled(
    fill_id: str,
    side: Side,
    amount: float,
    price: float,
    fee: float = 0.0,
    *,
    ts_ms: int = 2_000,
    order_id: str = "o-1",
) -> OrderFilled:
    return OrderFilled(
        fill=Fill(
            fill_id=fill_id,
            order_id=order_id,
            pair=BTC,
            side=side,
            amount=amount,
            price=price,
            fee=fee,
            ts_ms=ts_ms,
        )
    )


def marks(ts_ms: int, price: float) -> MarkPrices:
    return MarkPrices(ts_ms=ts_ms, marks=((BTC, price),))


@pytest.fixture
def db(state_db: str) -> str:
    """A fresh database on each backend (``tests/conftest.py``)."""
    return state_db


@pytest.fixture
def core(db: str) -> Iterator[StateCore]:
    state = StateCore.open(db, "USDT", FUNDING)
    yield state
    state.close()


def book_of(envelope: Envelope) -> PairBook:
    assert isinstance(envelope.message, PositionChanged)
    return envelope.message.book


# -- orders ----------------------------------------------------------------------------------------


def test_an_order_update_goes_to_its_pair_to_risk_and_to_events(core: StateCore) -> None:
    """Risk first (it must know before the pair acts), then the pair's book, then events."""
    update = OrderUpdated(order=an_order("o-1", Side.BUY, status=OrderStatus.NEW))

    out = core.handle(update)

    assert [e.to for e in out] == [RISK, BTC, EVENTS]
    assert out[0].message is update
    assert book_of(out[1]).open_orders == (update.order,)
    assert out[2].message is update
    assert core.store.orders() == [update.order]


def test_a_stale_order_update_is_neither_stored_nor_published(core: StateCore) -> None:
    """After FILLED, a late OPEN for the same order produces nothing."""
    core.handle(OrderUpdated(order=an_order("o-1", Side.BUY, status=OrderStatus.FILLED)))

    out = core.handle(
        OrderUpdated(order=an_order("o-1", Side.BUY, status=OrderStatus.OPEN, updated_ms=5_000))
    )

    assert out == []
    assert core.store.orders()[0].status is OrderStatus.FILLED


# -- fills -----------------------------------------------------------------------------------------


def test_an_opening_fill_goes_to_the_pair_risk_and_events(core: StateCore) -> None:
    """Risk: the portfolio (first), with the exposure of the fill's pair only; pair: its book;
    events: the fill. No PositionClosed."""
    message = filled("f-1", Side.BUY, 10.0, 100.0, 1.0)

    out = core.handle(message)

    assert [(e.to, type(e.message)) for e in out] == [
        (RISK, PortfolioChanged),
        (BTC, PositionChanged),
        (EVENTS, OrderFilled),
    ]
    position = book_of(out[1]).position
    assert position is not None
    assert position.cost == pytest.approx(1_001.0)
    assert out[0].message == PortfolioChanged(
        ts_ms=2_000,
        cash=pytest.approx(8_999.0),
        equity=pytest.approx(9_999.0),
        peak_equity=10_000.0,
        exposure=((BTC, pytest.approx(1_000.0)),),
        realized_pnl=0.0,
        full=False,
    )
    assert out[2].message is message


def test_a_closing_fill_tells_risk_and_events_the_round_trip_closed(core: StateCore) -> None:
    """The reason comes from the sell order; pnl is the whole round trip's."""
    core.handle(filled("f-1", Side.BUY, 10.0, 100.0, 1.0))
    core.handle(OrderUpdated(order=an_order("o-2", Side.SELL, reason=ExitReason.STOP_LOSS)))

    out = core.handle(filled("f-2", Side.SELL, 10.0, 95.0, 1.0, order_id="o-2", ts_ms=3_000))

    closed = PositionClosed(pair=BTC, reason=ExitReason.STOP_LOSS, pnl=-52.0, ts_ms=3_000)
    assert [(e.to, type(e.message)) for e in out] == [
        (RISK, PortfolioChanged),
        (RISK, PositionClosed),
        (BTC, PositionChanged),
        (EVENTS, OrderFilled),
        (EVENTS, PositionClosed),
    ]
    assert out[1].message == closed
    assert out[4].message == closed
    assert book_of(out[2]).position is None
    assert book_of(out[2]).trades == 1


def test_a_duplicate_fill_produces_nothing_and_is_stored_once(core: StateCore) -> None:
    """Exactly once: the second delivery of a fill returns no envelopes."""
    core.handle(filled("f-1", Side.BUY, 10.0, 100.0))

    out = core.handle(filled("f-1", Side.BUY, 10.0, 100.0))

    assert out == []
    assert len(core.store.fills()) == 1
    assert core.answer(GetBalances()) == {"USDT": 9_000.0, "BTC": 10.0}


# -- marks -----------------------------------------------------------------------------------------


def settled(fill: OrderFilled, reason: ExitReason = ExitReason.ENTRY) -> OrderFilled:
    """The paper exchange's one message for an order filled on arrival: the fill and the
    order as it ended."""
    f = fill.fill
    order = Order(order_id=f.order_id, pair=f.pair, side=f.side, order_type=OrderType.MARKET,
                  reason=reason, amount=f.amount, status=OrderStatus.FILLED,
                  created_ms=f.ts_ms, updated_ms=f.ts_ms, filled=f.amount,
                  average_price=f.price, fee=f.fee)
    return OrderFilled(fill=f, order=order)


def test_a_fill_with_its_finished_order_is_booked_at_once_and_answered_once_each(
        db: str) -> None:
    """One message books order and fill: risk gets one OrderSettled (order, portfolio), the
    pair one book naming the order settled, subscribers NEW, OPEN, the fill and FILLED; the
    database holds the filled order, the fill and the position."""
    core = StateCore.open(db, "USDT", FUNDING)
    message = settled(filled("f-1", Side.BUY, 2.0, 100.0, 0.2))

    out = core.handle(message)

    assert [e.to for e in out] == [RISK, BTC, EVENTS, EVENTS, EVENTS, EVENTS]
    to_risk = out[0].message
    assert isinstance(to_risk, OrderSettled)
    assert to_risk.order == message.order and to_risk.closed is None
    assert to_risk.portfolio.cash == pytest.approx(10_000.0 - 200.2)
    assert dict(to_risk.portfolio.exposure) == {BTC: pytest.approx(200.0)}
    changed = out[1].message
    assert isinstance(changed, PositionChanged) and changed.settled == "o-1"
    assert changed.book.open_orders == ()
    assert changed.book.position is not None and changed.book.position.amount == 2.0
    events = [e.message for e in out[2:]]
    assert [e.order.status if isinstance(e, OrderUpdated) else "fill" for e in events] == [
        OrderStatus.NEW, OrderStatus.OPEN, "fill", OrderStatus.FILLED]
    assert events[0].order.filled == 0.0 and events[0].order.updated_ms == 2_000
    assert events[2] == message and events[3].order == message.order
    assert committed(db, "SELECT order_id, status, filled FROM orders") == [
        ("o-1", "filled", 2.0)]
    assert committed(db, "SELECT fill_id, order_id FROM fills") == [("f-1", "o-1")]
    assert committed(db, "SELECT pair, amount FROM positions") == [(BTC, 2.0)]
    assert (core.ledger.order_count, core.ledger.fill_count) == (1, 1)
    core.close()


def test_a_closing_fill_with_its_order_closes_the_round_trip_for_the_order_s_reason(
        db: str) -> None:
    """The order is booked before its fill, so the closed round trip carries the order's
    reason; risk hears it inside OrderSettled, subscribers as PositionClosed."""
    core = StateCore.open(db, "USDT", FUNDING)
    core.handle(settled(filled("f-1", Side.BUY, 1.0, 100.0)))

    out = core.handle(settled(filled("f-2", Side.SELL, 1.0, 90.0, ts_ms=3_000,
                                     order_id="o-2"), ExitReason.STOP_LOSS))

    to_risk = out[0].message
    assert isinstance(to_risk, OrderSettled)
    assert to_risk.closed == PositionClosed(pair=BTC, reason=ExitReason.STOP_LOSS, pnl=-10.0,
                                            ts_ms=3_000)
    assert [e.message for e in out if isinstance(e.message, PositionClosed)] == [
        to_risk.closed]
    assert book_of(out[1]).position is None
    assert committed(db, "SELECT COUNT(*) FROM positions") == [(0,)]
    assert committed(db, "SELECT realized, trades FROM pnl") == [(-10.0, 1)]
    core.close()


def test_an_old_duplicate_fill_with_its_order_changes_nothing(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond the ledger's window the database refuses the fill, and the order it carries is
    not applied either: books, balances and counts stay as they were."""
    monkeypatch.setattr("actors.state.ledger.RECENT_FILLS", 1)
    core = StateCore.open(db, "USDT", FUNDING)
    first = settled(filled("f-1", Side.BUY, 1.0, 100.0, 0.1))
    core.handle(first)
    core.handle(settled(filled("f-2", Side.SELL, 1.0, 110.0, 0.1, ts_ms=3_000,
                               order_id="o-2"), ExitReason.EXIT_SIGNAL))
    assert not core.ledger.knows_fill("f-1")
    ledger = core.ledger
    before = (dict(ledger.balances), ledger.book(BTC), ledger.fill_count, ledger.order_count)

    assert core.handle(first) == []

    assert (dict(ledger.balances), ledger.book(BTC), ledger.fill_count,
            ledger.order_count) == before
    assert committed(db, "SELECT COUNT(*) FROM fills") == [(2,)]
    core.close()


def test_marks_update_equity_and_tell_risk(core: StateCore) -> None:
    """Risk hears the portfolio valued at the new marks."""
    core.handle(filled("f-1", Side.BUY, 10.0, 100.0))

    out = core.handle(marks(5_000, 120.0))

    assert [e.to for e in out] == [RISK]
    portfolio = out[0].message
    assert isinstance(portfolio, PortfolioChanged)
    assert portfolio.equity == pytest.approx(10_200.0)
    assert portfolio.peak_equity == pytest.approx(10_200.0)
    assert portfolio.ts_ms == 5_000


def test_a_mark_tells_risk_its_own_pair_s_exposure_and_a_request_the_whole(
        core: StateCore) -> None:
    """A change carries the pairs it moved (full=False); risk's request gets every open
    position (full=True), valued at the latest marks, at the latest mark's time."""
    eth = "ETH/USDT"
    core.handle(filled("f-1", Side.BUY, 10.0, 100.0))
    core.handle(OrderFilled(fill=Fill(fill_id="f-2", order_id="o-2", pair=eth, side=Side.BUY,
                                      amount=1.0, price=2_000.0, fee=0.0, ts_ms=2_500)))

    [changed] = [e.message for e in core.handle(marks(5_000, 120.0))]
    [whole] = [e.message for e in core.handle(RequestPortfolio())]

    assert (changed.full, changed.exposure) == (False, ((BTC, pytest.approx(1_200.0)),))
    assert whole.full
    assert whole.exposure == ((BTC, pytest.approx(1_200.0)), (eth, pytest.approx(2_000.0)))
    assert (whole.ts_ms, whole.equity) == (5_000, pytest.approx(changed.equity))


def test_a_closing_fill_tells_risk_the_pair_is_at_zero(core: StateCore) -> None:
    """The change after a sell that closes names the pair with 0.0, so risk forgets it."""
    core.handle(filled("f-1", Side.BUY, 10.0, 100.0))

    out = core.handle(filled("f-2", Side.SELL, 10.0, 110.0, order_id="o-2"))

    [portfolio] = [e.message for e in out if isinstance(e.message, PortfolioChanged)]
    assert (portfolio.full, portfolio.exposure) == (False, ((BTC, 0.0),))


def test_a_mark_of_a_flat_pair_tells_risk_nothing(core: StateCore) -> None:
    """Without a position the price moves neither equity nor exposure: nothing to send, and
    the mark is still taken (it values the next position)."""
    out = core.handle(marks(5_000, 120.0))

    assert out == []
    assert core.ledger.marks[BTC] == 120.0
    assert core.ledger.equity() == pytest.approx(10_000.0)


def test_a_mark_taken_directly_does_what_the_message_does(tmp_path: Path) -> None:
    """``mark_price`` (the threadless runtime's marks) leaves the ledger, the stored equity
    points and risk's answer as ``MarkPrices`` of that pair alone does; a stale generation's
    is refused and counted as the message would be."""
    cores = [StateCore.open(str(tmp_path / f"{name}.db"), "USDT", FUNDING)
             for name in ("sent", "direct")]
    answers: list[list[object]] = [[], []]
    for i, state in enumerate(cores):
        state.handle(filled("f-1", Side.BUY, 10.0, 100.0))
        state.handle(PairGeneration(pair=BTC, generation=2))
        for ts, price, generation in ((1_000, 120.0, 2), (61_000, 90.0, 2), (62_000, 130.0, 1),
                                      (121_000, 125.0, 3)):
            if i == 0:
                out = state.handle(MarkPrices(ts_ms=ts, marks=((BTC, price),),
                                              generation=generation))
                answers[i].append(out[0].message if out else None)
            else:
                answers[i].append(state.mark_price(BTC, price, ts, generation))
    sent, direct = cores

    assert answers[0] == answers[1] and answers[1][2] is None
    assert isinstance(answers[1][0], PortfolioChanged)
    assert direct.store.equity_history() == sent.store.equity_history()
    assert (direct.ledger.marks, direct.ledger.peak_equity, direct.fence.fenced) == (
        sent.ledger.marks, sent.ledger.peak_equity, 1)
    for state in cores:
        state.close()


def test_equity_points_are_stored_at_most_once_per_interval_of_market_time(db: str) -> None:
    """With a 60 s interval, marks at 1, 31, 61, 62 and 121 s store points at 1, 61 and 121 s."""
    core = StateCore.open(db, "USDT", FUNDING, equity_interval_ms=60_000)
    for ts in (1_000, 31_000, 61_000, 62_000, 121_000):
        core.handle(marks(ts, 100.0))

    assert [ts for ts, _ in core.store.equity_history()] == [1_000, 61_000, 121_000]
    core.close()


def test_the_equity_interval_continues_across_a_restart(db: str) -> None:
    """A reopened core knows when the last point was stored."""
    first = StateCore.open(db, "USDT", FUNDING, equity_interval_ms=60_000)
    first.handle(marks(1_000, 100.0))
    first.close()

    second = StateCore.open(db, "USDT", FUNDING, equity_interval_ms=60_000)
    second.handle(marks(30_000, 100.0))
    second.handle(marks(61_000, 100.0))

    assert [ts for ts, _ in second.store.equity_history()] == [1_000, 61_000]
    second.close()


# -- peaks, strategies, book requests --------------------------------------------------------------


def test_a_higher_peak_is_stored_without_an_answer_and_a_restarted_pair_gets_it(
        core: StateCore) -> None:
    """RaisePeak is persisted, never answered (the pair holds its own peak); a lower peak
    changes nothing; the book a restarted pair requests carries the stored peak."""
    core.handle(filled("f-1", Side.BUY, 1.0, 100.0))

    raised = core.handle(RaisePeak(pair=BTC, price=110.0))
    lower = core.handle(RaisePeak(pair=BTC, price=105.0))
    nothing_open = core.handle(RaisePeak(pair=ETH, price=1.0))

    assert raised == lower == nothing_open == []
    assert core.store.load().positions[BTC].peak_price == 110.0
    (answer,) = core.handle(RequestBook(pair=BTC))
    position = book_of(answer).position
    assert position is not None and position.peak_price == 110.0


def test_a_peak_carried_by_a_mark_is_stored_like_raise_peak(core: StateCore) -> None:
    """MarkPrices.peaks raise the position's peak (never lower it); the book keeps it."""
    core.handle(filled("f-1", Side.BUY, 1.0, 100.0))

    core.handle(MarkPrices(ts_ms=3_000, marks=((BTC, 104.0),), peaks=((BTC, 105.0),)))
    core.handle(MarkPrices(ts_ms=4_000, marks=((BTC, 103.0),), peaks=((BTC, 101.0),)))

    assert core.store.load().positions[BTC].peak_price == 105.0
    position = core.answer(GetPairBook(pair=BTC)).position
    assert position is not None and position.peak_price == 105.0


def test_an_assigned_strategy_is_stored_and_sent_to_the_pair(core: StateCore) -> None:
    """The pair's book carries the spec, and the database keeps it."""
    out = core.handle(StrategyAssigned(pair=ETH, spec=SPEC, generation=1))

    assert [e.to for e in out] == [ETH]
    assert book_of(out[0]).strategy == SPEC
    assert core.store.load().strategies == {ETH: SPEC}


def test_a_book_request_is_answered_with_the_pairs_book(core: StateCore) -> None:
    """RequestBook is a tell; the reply is a PositionChanged to the pair."""
    core.handle(filled("f-1", Side.BUY, 1.0, 100.0))

    out = core.handle(RequestBook(pair=BTC))

    assert out == [Envelope(to=BTC, message=PositionChanged(book=core.ledger.book(BTC)))]


def test_an_unknown_message_is_counted_and_produces_nothing(core: StateCore) -> None:
    """Nothing is sent for a message the state actor does not handle."""
    assert core.handle("hello") == []
    assert core.unknown == 1


# -- queries ---------------------------------------------------------------------------------------


def test_queries_answer_books_portfolio_balances_and_pings(core: StateCore) -> None:
    """Each query gets its reply value; balances are a copy."""
    core.handle(StrategyAssigned(pair=ETH, spec=SPEC))
    core.handle(filled("f-1", Side.BUY, 1.0, 100.0))
    core.handle(marks(3_000, 110.0))

    book = core.answer(GetPairBook(pair=BTC))
    snapshot = core.answer(GetPortfolio())
    balances = core.answer(GetBalances())
    assert isinstance(balances, dict)
    balances["USDT"] = 0.0

    assert isinstance(book, PairBook)
    assert book.position is not None
    assert snapshot == core.ledger.snapshot()
    assert [b.pair for b in core.ledger.snapshot().books] == [BTC, ETH]
    assert core.answer(GetBalances()) == {"USDT": 9_900.0, "BTC": 1.0}
    assert core.answer(Ping(nonce=7)) == Ping(nonce=7)


def test_a_query_the_state_does_not_answer_raises_type_error(core: StateCore) -> None:
    """The asker gets the error; the core is unchanged."""
    with pytest.raises(TypeError, match="GetRiskStatus"):
        core.answer(GetRiskStatus())


# -- a second run ----------------------------------------------------------------------------------


def test_a_fresh_database_starts_from_the_initial_balances(core: StateCore) -> None:
    """Nothing stored yet: cash is the funding and the peak equals it."""
    snapshot = core.ledger.snapshot()

    assert snapshot.cash == 10_000.0
    assert snapshot.peak_equity == 10_000.0
    assert snapshot.books == ()


def test_a_second_run_continues_where_the_first_stopped(db: str) -> None:
    """Open position, partial PnL, strategy, orders and peak survive; new funding is ignored."""
    first = StateCore.open(db, "USDT", FUNDING)
    first.handle(StrategyAssigned(pair=BTC, spec=SPEC))
    first.handle(OrderUpdated(order=an_order("o-1", Side.BUY, status=OrderStatus.FILLED)))
    first.handle(filled("f-1", Side.BUY, 10.0, 100.0, 1.0))
    first.handle(filled("f-2", Side.SELL, 4.0, 110.0, 0.4, order_id="o-2"))
    first.handle(RaisePeak(pair=BTC, price=112.0))
    first.handle(marks(4_000, 111.0))
    before = first.answer(GetPortfolio())
    first.close()

    second = StateCore.open(db, "USDT", {"USDT": 1.0})
    second.handle(marks(5_000, 111.0))
    after = second.answer(GetPortfolio())

    assert after == before
    assert second.answer(GetBalances()) == first.ledger.balances
    assert second.answer(GetPairBook(pair=BTC)) == first.ledger.book(BTC)
    position = second.ledger.positions[BTC]
    assert (position.amount, position.peak_price) == (pytest.approx(6.0), 112.0)
    assert second.ledger.strategies == {BTC: SPEC}

    # the round trip begun in the first run closes in the second with its whole PnL
    second.handle(OrderUpdated(order=an_order("o-3", Side.SELL, reason=ExitReason.TAKE_PROFIT)))
    out = second.handle(filled("f-3", Side.SELL, 6.0, 120.0, 0.6, order_id="o-3", ts_ms=6_000))
    closed = [e.message for e in out if e.to == RISK and isinstance(e.message, PositionClosed)]
    # bought 10 @ 100 + 1 fee; sold 4 @ 110 - 0.4 and 6 @ 120 - 0.6
    assert closed == [
        PositionClosed(
            pair=BTC, reason=ExitReason.TAKE_PROFIT, pnl=pytest.approx(158.0), ts_ms=6_000
        )
    ]
    second.close()


def test_a_fill_replayed_after_a_restart_is_still_applied_only_once(db: str) -> None:
    """Exactly once holds across runs: fill ids are loaded with the ledger."""
    first = StateCore.open(db, "USDT", FUNDING)
    first.handle(filled("f-1", Side.BUY, 1.0, 100.0))
    first.close()

    second = StateCore.open(db, "USDT", FUNDING)
    out = second.handle(filled("f-1", Side.BUY, 1.0, 100.0))

    assert out == []
    assert second.answer(GetBalances()) == {"USDT": 9_900.0, "BTC": 1.0}
    second.close()


def test_a_database_kept_in_another_quote_currency_is_refused(db: str) -> None:
    """Reopening with a different quote raises instead of mixing currencies."""
    StateCore.open(db, "USDT", FUNDING).close()

    with pytest.raises(StateStoreError, match="'USDT', not 'BTC'"):
        StateCore.open(db, "BTC", {"BTC": 1.0})


_events = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell", "mark", "peak"]),
        st.floats(0.05, 1.0),
        st.floats(50.0, 150.0),
    ),
    max_size=30,
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_events)
def test_what_the_core_stored_always_loads_back_into_the_same_ledger(
    new_state_db: Callable[[], str], events: list[tuple[str, float, float]],
) -> None:
    """After any sequence of fills, marks and peaks, load() rebuilds the live ledger (a new
    database per example)."""
    core = StateCore.open(new_state_db(), "USDT", {"USDT": 1_000_000.0},
                          equity_interval_ms=1_000)
    for n, (kind, size, price) in enumerate(events, start=1):
        held = core.ledger.positions.get(BTC)
        if kind == "buy":
            core.handle(filled(f"f{n}", Side.BUY, size, price, size * price * 0.001, ts_ms=n))
        elif kind == "sell" and held is not None:
            core.handle(filled(f"f{n}", Side.SELL, held.amount * size, price, 0.01, ts_ms=n))
        elif kind == "mark":
            core.handle(marks(n * 700, price))
        elif kind == "peak":
            core.handle(RaisePeak(pair=BTC, price=price))

    loaded = core.store.load()
    live = core.ledger

    assert loaded.balances == live.balances
    assert loaded.positions == live.positions
    assert loaded.trip_pnl == live.trip_pnl
    assert loaded.realized == live.realized
    assert loaded.trades == live.trades
    assert loaded.fill_ids == live.fill_ids
    assert loaded.peak_equity == live.peak_equity
    core.close()


# -- exactly once beyond the ledger's window -------------------------------------------------------


def test_a_duplicate_older_than_the_recent_window_is_refused_and_changes_nothing(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger forgot the id; the database refuses it before the ledger is touched."""
    monkeypatch.setattr("actors.state.ledger.RECENT_FILLS", 2)  # before the ledger sizes its window
    core = StateCore.open(db, "USDT", FUNDING)
    core.handle(filled("f-1", Side.BUY, 1.0, 100.0, 0.1, ts_ms=2_000))
    core.handle(filled("f-2", Side.BUY, 1.0, 110.0, 0.1, ts_ms=3_000))
    core.handle(filled("f-3", Side.SELL, 0.5, 120.0, 0.1, ts_ms=4_000))
    assert not core.ledger.knows_fill("f-1")
    before = (dict(core.ledger.balances), core.ledger.book(BTC), core.ledger.fill_count,
              core.ledger.peak_equity)

    out = core.handle(filled("f-1", Side.BUY, 1.0, 100.0, 0.1, ts_ms=2_000))

    assert out == []
    assert (dict(core.ledger.balances), core.ledger.book(BTC), core.ledger.fill_count,
            core.ledger.peak_equity) == before
    assert [f.fill_id for f in core.store.fills()] == ["f-1", "f-2", "f-3"]
    assert core.store.load().balances == core.ledger.balances
    core.close()


def test_an_old_duplicate_after_a_restart_is_refused_by_the_database(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reloaded ledger holds only the newest ids; an older replayed fill still applies once."""
    monkeypatch.setattr("actors.state.ledger.RECENT_FILLS", 1)
    monkeypatch.setattr("actors.state.store.RECENT_FILLS", 1)
    first = StateCore.open(db, "USDT", FUNDING)
    first.handle(filled("f-1", Side.BUY, 1.0, 100.0))
    first.handle(filled("f-2", Side.BUY, 1.0, 100.0, ts_ms=3_000))
    first.close()

    second = StateCore.open(db, "USDT", FUNDING)
    out = second.handle(filled("f-1", Side.BUY, 1.0, 100.0))

    assert out == []
    assert second.answer(GetBalances()) == {"USDT": 9_800.0, "BTC": 2.0}
    assert second.ledger.fill_count == 2
    second.close()


# -- group commit ----------------------------------------------------------------------------------


def committed(path: str, sql: str) -> list[tuple[object, ...]]:
    """What another connection sees: only committed rows."""
    return db_rows(path, sql)


def test_with_group_commit_nothing_is_durable_until_commit(db: str) -> None:
    """A batch of changes reaches the file in one commit, and only then."""
    core = StateCore.open(db, "USDT", FUNDING)
    core.group_commit = True

    core.handle(OrderUpdated(order=an_order("o-1", Side.BUY, status=OrderStatus.NEW)))
    core.handle(filled("f-1", Side.BUY, 1.0, 100.0, order_id="o-1"))
    core.handle(RaisePeak(pair=BTC, price=120.0))
    before = committed(db, "SELECT COUNT(*) FROM fills")
    assert core.uncommitted
    core.commit()

    assert before == [(0,)]
    assert committed(db, "SELECT fill_id FROM fills") == [("f-1",)]
    assert committed(db, "SELECT amount, peak_price FROM positions") == [(1.0, 120.0)]
    assert committed(db, "SELECT asset, amount FROM balances ORDER BY asset") == [
        ("BTC", 1.0), ("USDT", 9_900.0)]
    assert not core.uncommitted
    core.close()


def test_an_order_updated_three_times_in_a_batch_is_stored_once_with_its_last_value(
    db: str,
) -> None:
    """NEW, OPEN and FILLED in one batch: one row, FILLED, as three commits would leave it."""
    core = StateCore.open(db, "USDT", FUNDING)
    core.group_commit = True
    for status, ts in ((OrderStatus.NEW, 1_000), (OrderStatus.OPEN, 1_001),
                       (OrderStatus.FILLED, 1_002)):
        core.handle(OrderUpdated(order=an_order("o-1", Side.BUY, status=status,
                                                updated_ms=ts)))

    core.commit()

    assert committed(db, "SELECT order_id, status, updated_ms FROM orders") == [
        ("o-1", "filled", 1_002)]
    core.close()


def test_closing_without_commit_loses_the_batch_and_a_reload_replays_it_exactly(
    db: str,
) -> None:
    """A batch lost before its commit is simply handled again on the reloaded state."""
    batch = [filled("f-1", Side.BUY, 1.0, 100.0), filled("f-2", Side.SELL, 1.0, 110.0,
                                                           ts_ms=3_000)]
    lost = StateCore.open(db, "USDT", FUNDING)
    lost.group_commit = True
    expected = [lost.handle(m) for m in batch]
    lost.close()

    again = StateCore.open(db, "USDT", FUNDING)
    again.group_commit = True
    assert again.ledger.fill_count == 0
    replayed = [again.handle(m) for m in batch]
    again.commit()

    assert replayed == expected
    assert again.store.load().realized == {BTC: pytest.approx(10.0)}
    again.close()


# -- control plane: closed trades, audit, history pages ------------------------------------------


def test_a_closed_round_trip_is_recorded_with_its_entry_exit_and_pnl(core: StateCore) -> None:
    """The trades table gets one row per round trip, read back newest first by GetTrades."""
    core.handle(filled("f-1", Side.BUY, 10.0, 100.0, 1.0, ts_ms=2_000))
    core.handle(OrderUpdated(order=an_order("o-2", Side.SELL, reason=ExitReason.STOP_LOSS)))
    core.handle(filled("f-2", Side.SELL, 10.0, 95.0, 1.0, order_id="o-2", ts_ms=3_000))

    (trade,) = core.answer(GetTrades())

    assert trade == ClosedTrade(pair=BTC, opened_ms=2_000, closed_ms=3_000, amount=10.0,
                                entry_price=100.0, exit_price=95.0, pnl=-52.0,
                                reason=ExitReason.STOP_LOSS)
    assert core.answer(GetTrades(pair="ETH/USDT")) == ()


def test_history_pages_are_newest_first_and_filtered_by_pair_time_and_status(
        core: StateCore) -> None:
    """GetFills and GetOrders page newest first; offset skips, since/until bound the window,
    open_only keeps unfinished orders; GetEquity pages the equity points."""
    for n in range(5):
        core.handle(filled(f"f-{n}", Side.BUY, 0.1, 100.0, ts_ms=2_000 + n, order_id=f"o-{n}"))
    core.handle(OrderUpdated(order=an_order("o-open", Side.BUY)))
    core.handle(marks(10_000, 101.0))

    assert [f.fill_id for f in core.answer(GetFills(limit=2))] == ["f-4", "f-3"]
    assert [f.fill_id for f in core.answer(GetFills(limit=2, offset=2))] == ["f-2", "f-1"]
    window = core.answer(GetFills(since_ms=2_001, until_ms=2_002))
    assert [f.fill_id for f in window] == ["f-2", "f-1"]
    assert core.answer(GetFills(pair="ETH/USDT")) == ()
    assert [o.order_id for o in core.answer(GetOrders(open_only=True))] == ["o-open"]
    assert core.answer(GetEquity())[0][0] == 10_000


def test_an_audit_record_is_stored_and_read_back(core: StateCore) -> None:
    record = AuditRecord(ts_ms=5, actor="api 127.0.0.1", action="pause", target=BTC,
                         detail="", outcome="ok")
    assert core.handle(record) == []
    assert core.answer(GetAudit()) == (record,)
    assert core.answer(GetAudit(pair="ETH/USDT")) == ()


def test_a_database_from_before_the_control_tables_gains_them_on_open(tmp_path: Path) -> None:
    """A schema-2 SQLite file (no trades, no audit) migrates to the current version on open,
    and they are there."""
    db = str(tmp_path / "schema-2.sqlite")
    StateCore.open(db, "USDT", FUNDING).close()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        for statement in ("DROP TABLE trades", "DROP TABLE audit", "DROP INDEX fills_by_time",
                          "DROP INDEX orders_by_time",
                          "DELETE FROM schema_version WHERE version >= 3"):
            conn.execute(statement)
    state = StateCore.open(db, "USDT", FUNDING)
    try:
        assert state.store.migrated == [3, 4]
        assert state.answer(GetTrades()) == () and state.answer(GetAudit()) == ()
    finally:
        state.close()


def test_an_inferred_fill_replaced_by_its_trades_is_stored_as_the_trades_and_counted_once(
        core: StateCore, db: str) -> None:
    """The inferred row goes and the trades' rows come, in one commit; a second delivery
    changes nothing."""
    inferred = filled("o-1-inferred", Side.BUY, 10.0, 100.0).fill
    core.handle(OrderFilled(fill=inferred))
    trades = (filled("o-1-t7", Side.BUY, 4.0, 99.0, 0.4).fill,
              filled("o-1-t8", Side.BUY, 6.0, 100.0 + 2 / 3, 0.6).fill)

    out = core.handle(FillReplaced(inferred=inferred, fills=trades))
    again = core.handle(FillReplaced(inferred=inferred, fills=trades))

    assert [type(e.message) for e in out] == [PortfolioChanged, PositionChanged, FillReplaced]
    assert again == []
    with open_store(db) as store:
        assert sorted(f.fill_id for f in store.fills()) == ["o-1-t7", "o-1-t8"]
        assert store.balances() == pytest.approx({"USDT": 9_000.0 - 1.0, "BTC": 10.0})
