"""The execution core: one message for a fill on arrival, write-ahead for the rest, routing
to state, tick interest and expiry."""

from __future__ import annotations

import attrs
import pytest

from actors.execution.core import ExecutionCore
from actors.execution.paper_exchange import PaperConfig, PaperExchange
from actors.messages import (
    STATE,
    CancelOrder,
    Envelope,
    ExitReason,
    GetBalances,
    GetRiskStatus,
    MarketTick,
    OrderFilled,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
)

T0 = 1_700_000_000_000
PAIR = "BTC/USDT"


def make_core(usdt: float = 10_000.0, ttl_ms: int = 60_000) -> ExecutionCore:
    exchange = PaperExchange(PaperConfig(), {"USDT": usdt}, lambda _: 0.01, lambda _: 0.001)
    return ExecutionCore(exchange, limit_ttl_ms=ttl_ms)


def submit(
    order_id: str = "o-1", *, amount: float = 1.0, limit: float | None = None, ts: int = T0
) -> SubmitOrder:
    return SubmitOrder(
        order_id=order_id,
        proposal_id=order_id.removeprefix("o-"),
        pair=PAIR,
        generation=0,
        side=Side.BUY,
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        reason=ExitReason.ENTRY,
        amount=amount,
        bid=99.99,
        ask=100.0,
        ts_ms=ts,
        limit_price=limit,
    )


def tick(ask: float, ts: int, pair: str = PAIR) -> MarketTick:
    return MarketTick(pair=pair, ts_ms=ts, price=ask, bid=ask - 0.01, ask=ask)


def kinds(envelopes: list[Envelope]) -> list[str]:
    out = []
    for envelope in envelopes:
        message = envelope.message
        if isinstance(message, OrderUpdated):
            out.append(message.order.status.value)
        else:
            assert isinstance(message, OrderFilled)
            out.append("fill")
    return out


def test_a_market_order_filled_on_arrival_reaches_state_as_one_message() -> None:
    """No NEW row for the paper exchange's fill on arrival: one OrderFilled to state carries
    the fill and the finished order (a lost process loses the paper exchange as well)."""
    core = make_core()

    (envelope,) = core.handle(submit(amount=1.5))

    assert envelope.to == STATE
    message = envelope.message
    assert isinstance(message, OrderFilled)
    assert message.order is not None
    assert (message.order.order_id, message.order.status) == ("o-1", OrderStatus.FILLED)
    assert message.order.filled == message.fill.amount == 1.5


def test_a_resting_limit_is_recorded_as_new_before_the_exchange_s_answer() -> None:
    """Write-ahead stays for an order that rests: NEW first, then OPEN, both to state."""
    core = make_core()

    envelopes = core.handle(submit(amount=1.5, limit=95.0))

    assert kinds(envelopes) == ["new", "open"]
    assert {e.to for e in envelopes} == {STATE}
    intent = envelopes[0].message.order
    assert (intent.order_id, intent.amount, intent.filled) == ("o-1", 1.5, 0.0)
    assert intent.created_ms == intent.updated_ms == T0


def test_rejected_submit_is_still_recorded_first() -> None:
    """An order the exchange refuses is NEW, then REJECTED with the exchange's reason."""
    core = make_core(usdt=10.0)

    envelopes = core.handle(submit())

    assert kinds(envelopes) == ["new", "rejected"]
    assert envelopes[1].message.order.reject_reason.startswith("insufficient_balance")


def test_duplicate_submit_sends_nothing_at_all() -> None:
    """A repeated order id is neither recorded again nor placed again."""
    core = make_core()
    core.handle(submit())
    balances = core.answer(GetBalances())

    assert core.handle(submit()) == []
    assert core.answer(GetBalances()) == balances


def test_tick_pairs_lists_pairs_with_resting_orders_and_is_replaced_not_mutated() -> None:
    """A resting limit adds its pair; the filled limit removes it; old snapshots never change."""
    core = make_core()
    before = core.tick_pairs

    core.handle(submit(limit=95.0))
    resting = core.tick_pairs
    core.handle(tick(ask=94.0, ts=T0 + 1_000))

    assert before == frozenset()
    assert resting == frozenset({PAIR})
    assert core.tick_pairs == frozenset()
    assert resting == frozenset({PAIR})


def test_market_orders_do_not_make_the_pair_interesting() -> None:
    """A filled market order leaves nothing resting, so no ticks are needed."""
    core = make_core()

    core.handle(submit())

    assert core.tick_pairs == frozenset()


def test_crossing_tick_fills_the_resting_limit_and_reports_it_to_state() -> None:
    """A tick at or under a buy limit yields the fill and FILLED, to state."""
    core = make_core()
    core.handle(submit(limit=95.0))

    envelopes = core.handle(tick(ask=95.0, ts=T0 + 1_000))

    assert kinds(envelopes) == ["fill"]
    assert {e.to for e in envelopes} == {STATE}
    assert envelopes[0].message.fill.maker
    assert envelopes[0].message.order.status is OrderStatus.FILLED


def test_tick_for_a_pair_without_resting_orders_does_nothing() -> None:
    """Ticks for other pairs return no envelopes."""
    core = make_core()
    core.handle(submit(limit=95.0))

    assert core.handle(tick(ask=1.0, ts=T0 + 1_000, pair="ETH/USDT")) == []


def test_ticks_expire_limits_that_rested_for_the_ttl() -> None:
    """Market time reaching the ttl cancels the resting limit and frees its funds."""
    core = make_core(ttl_ms=60_000)
    core.handle(submit(limit=95.0))

    assert core.handle(tick(ask=99.0, ts=T0 + 59_999)) == []
    envelopes = core.handle(tick(ask=99.0, ts=T0 + 60_000))

    assert kinds(envelopes) == ["canceled"]
    assert core.tick_pairs == frozenset()
    assert core.answer(GetBalances()) == pytest.approx({"USDT": 10_000.0})


def test_cancel_order_cancels_the_resting_limit_and_reports_it_to_state() -> None:
    """CancelOrder releases the reservation; state hears CANCELED."""
    core = make_core()
    core.handle(submit(limit=95.0))

    envelopes = core.handle(CancelOrder(order_id="o-1", pair=PAIR, ts_ms=T0 + 5))

    assert kinds(envelopes) == ["canceled"]
    assert envelopes[0].to == STATE
    assert core.tick_pairs == frozenset()


def test_balances_query_returns_free_balances() -> None:
    """GetBalances answers with the exchange's free balances, reservations excluded."""
    core = make_core(usdt=1_000.0)
    core.handle(submit(limit=95.0))

    assert core.answer(GetBalances()) == pytest.approx({"USDT": 1_000.0 - 95.095})


def test_unknown_messages_are_counted_and_unknown_queries_refused() -> None:
    """Nothing is ignored silently."""
    core = make_core()

    assert core.handle(object()) == []
    assert core.unhandled == 1
    with pytest.raises(TypeError, match="GetRiskStatus"):
        core.answer(GetRiskStatus())


def test_ttl_must_be_positive() -> None:
    """A zero ttl would cancel every limit at once; it is refused."""
    with pytest.raises(ValueError, match="limit_ttl_ms"):
        make_core(ttl_ms=0)


def test_statuses_reported_are_the_exchange_s_own() -> None:
    """The last update state hears is the exchange's view of the order."""
    core = make_core()

    *_, last = core.handle(submit())

    assert last.message.order == core._exchange.order("o-1")
    assert last.message.order.status is OrderStatus.FILLED


def test_cancelling_a_pairs_orders_frees_them_and_touches_no_other_pair() -> None:
    """CancelPairOrders: every resting order of that pair is canceled, others rest on."""
    from actors.messages import CancelPairOrders

    core = make_core()
    core.handle(submit("o-1", limit=90.0))
    core.handle(attrs.evolve(submit("o-2", limit=90.0), pair="ETH/USDT"))

    out = core.handle(CancelPairOrders(pair=PAIR, ts_ms=5_000))

    assert [(e.message.order.order_id, e.message.order.status) for e in out] == [
        ("o-1", OrderStatus.CANCELED)]
    assert core.tick_pairs == frozenset({"ETH/USDT"})
