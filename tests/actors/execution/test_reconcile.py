"""Reconciliation decisions: adopt, close with the real status, reject unsent, fill once."""

from __future__ import annotations

import pytest

from actors.execution.order_lifecycle import parse_order, parse_trade
from actors.execution.reconcile import OrderCheck, reconcile, trade_id_of
from actors.messages import ExitReason, Fill, Order, OrderFilled, OrderStatus, OrderType, Side


def order(oid: str, status: OrderStatus, order_type: OrderType = OrderType.LIMIT) -> Order:
    return Order(order_id=oid, pair="BTC/USDT", side=Side.BUY, order_type=order_type,
                 reason=ExitReason.ENTRY, amount=0.01, status=status, created_ms=1_000,
                 updated_ms=1_000, limit_price=50_000.0)


def xo(xid: str, cid: str, status: str, filled: float = 0.0) -> object:
    return parse_order({"id": xid, "clientOrderId": cid, "status": status, "filled": filled,
                        "amount": 0.01, "price": 50_000.0,
                        "average": 50_000.0 if filled else None})


def trade(tid: str, xid: str, amount: float) -> object:
    return parse_trade({"id": tid, "order": xid, "amount": amount, "price": 50_000.0,
                        "fee": {"cost": 0.0, "currency": "USDT"}})


def test_an_order_still_open_is_adopted_with_its_missed_fills() -> None:
    """Open at the exchange with a partial fill: the fill is applied and the order followed."""
    check = OrderCheck(order=order("o-1", OrderStatus.OPEN), client_id="o-1",
                       found=xo("11", "o-1", "open", 0.004), trades=(trade("5", "11", 0.004),))
    result = reconcile([check], now_ms=9_000)
    fills = [e.fill for e in result.events if isinstance(e, OrderFilled)]
    assert [f.fill_id for f in fills] == ["o-1-t5"]
    assert result.report.adopted == ("o-1",)
    assert [t.order.order_id for t in result.resume] == ["o-1"]
    assert result.events[-1].order.status is OrderStatus.PARTIALLY_FILLED


def test_an_order_filled_while_we_were_away_is_closed_once() -> None:
    """Closed at the exchange: fills the database lacks are applied, then FILLED."""
    recorded = Fill(fill_id="o-1-t5", order_id="o-1", pair="BTC/USDT", side=Side.BUY,
                    amount=0.004, price=50_000.0, fee=0.0, ts_ms=2_000)
    check = OrderCheck(order=order("o-1", OrderStatus.PARTIALLY_FILLED), client_id="o-1",
                       recorded=(recorded,), found=xo("11", "o-1", "closed", 0.01),
                       trades=(trade("5", "11", 0.004), trade("6", "11", 0.006)))
    result = reconcile([check], now_ms=9_000)
    assert result.report.missed_fills == (("o-1-t6", 0.006),)
    assert result.report.closed == (("o-1", "filled"),)
    assert result.resume == ()
    final = result.events[-1].order
    assert (final.status, final.filled) == (OrderStatus.FILLED, 0.01)


def test_a_canceled_order_keeps_its_real_status() -> None:
    """Canceled at the exchange: closed as CANCELED, not as anything else."""
    check = OrderCheck(order=order("o-1", OrderStatus.OPEN), client_id="o-1",
                       found=xo("11", "o-1", "canceled"), trades=())
    result = reconcile([check], now_ms=9_000)
    assert result.report.closed == (("o-1", "canceled"),)


def test_an_intent_the_exchange_never_saw_is_rejected_and_a_forgotten_order_canceled() -> None:
    """NEW and unknown: REJECTED (never placed); OPEN and unknown: CANCELED."""
    checks = [OrderCheck(order=order("o-1", OrderStatus.NEW), client_id="o-1"),
              OrderCheck(order=order("o-2", OrderStatus.OPEN), client_id="o-2")]
    result = reconcile(checks, now_ms=9_000)
    statuses = {e.order.order_id: (e.order.status, e.order.reject_reason)
                for e in result.events}
    assert statuses["o-1"][0] is OrderStatus.REJECTED
    assert statuses["o-1"][1].startswith("never_placed")
    assert statuses["o-2"][0] is OrderStatus.CANCELED
    assert result.report.unknown == (("o-1", "rejected"), ("o-2", "canceled"))


def test_an_acknowledged_intent_is_adopted() -> None:
    """NEW in the database but accepted at the exchange (the reply was lost): adopted."""
    check = OrderCheck(order=order("o-1", OrderStatus.NEW, OrderType.MARKET), client_id="o-1",
                       found=xo("11", "o-1", "closed", 0.01), trades=(trade("5", "11", 0.01),))
    result = reconcile([check], now_ms=9_000)
    assert result.report.closed == (("o-1", "filled"),)
    assert result.report.missed_fills == (("o-1-t5", 0.01),)


def test_foreign_orders_and_balance_differences_are_reported() -> None:
    """Orders not ours are listed; balances compare after the missed fills."""
    check = OrderCheck(order=order("o-1", OrderStatus.OPEN), client_id="o-1",
                       found=xo("11", "o-1", "closed", 0.01), trades=(trade("5", "11", 0.01),))
    foreign = xo("99", "manual", "open")
    result = reconcile([check], open_at_exchange=[xo("11", "o-1", "open"), foreign],
                       db_balances={"USDT": 1_000.0, "BTC": 0.0},
                       exchange_balances={"USDT": 500.0, "BTC": 0.02}, now_ms=9_000)
    assert result.report.foreign_orders == ("99",)
    diffs = {a: (db, ex) for a, db, ex in result.report.balance_differences}
    assert diffs["BTC"] == pytest.approx((0.01, 0.02))
    assert "USDT" not in diffs
    assert any("not ours" in line for line in result.report.lines())


def test_a_clean_start_reports_clean() -> None:
    """Nothing unfinished and matching balances: a clean report."""
    result = reconcile([], db_balances={"USDT": 1.0}, exchange_balances={"USDT": 1.0},
                       now_ms=1)
    assert result.report.clean
    assert result.events == ()


def test_recent_trades_no_fill_accounts_for_are_reported() -> None:
    """Trades booked before, or of an order being reconciled, are ours; the rest is reported."""
    check = OrderCheck(order=order("o-1", OrderStatus.OPEN), client_id="o-1",
                       found=xo("11", "o-1", "closed", 0.01), trades=(trade("5", "11", 0.01),))
    recent = [trade("3", "9", 0.02), trade("4", "10", 0.5), trade("5", "11", 0.01)]
    result = reconcile([check], recent_trades=recent, booked_trade_ids={"3"}, now_ms=9_000)
    assert result.report.unbooked_trades == (("4", "10", 0.5),)
    assert any("trade 4" in line for line in result.report.lines())
    assert not result.report.clean


def test_the_trade_id_is_read_back_from_a_fill_id() -> None:
    assert trade_id_of("o-ab12-BTCUSDT-g0-3-t5000001") == "5000001"
    assert trade_id_of("o-1-c0.01") is None
