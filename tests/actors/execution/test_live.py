"""LiveExecutionCore: write-ahead intent, rounding and the exchange's minimums before sending."""

from __future__ import annotations

import attrs

from actors.exchange.market_rules import MarketRules, PairRules
from actors.execution.live import LiveExecutionCore
from actors.messages import (
    RISK,
    STATE,
    CancelOrder,
    CancelPairOrders,
    ExitReason,
    GetBalances,
    Order,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
)


class FakeGateway:
    def __init__(self) -> None:
        self.balances = {"USDT": 5.0}
        self.sent: list[Order] = []
        self.cancels: list[tuple[str, str]] = []
        self.closed = False

    def submit(self, order: Order) -> None:
        self.sent.append(order)

    def cancel(self, order_id: str, pair: str) -> None:
        self.cancels.append((order_id, pair))

    def cancel_pair(self, pair: str) -> None:
        self.cancels.append(("*", pair))

    def close(self, timeout: float = 10.0) -> None:
        self.closed = True


RULES = MarketRules({"BTC/USDT": PairRules(tick=0.01, lot=0.0001, min_amount=0.0001,
                                           min_notional=10.0)})


def submit(amount: float, order_type: OrderType = OrderType.MARKET,
           limit: float | None = None, order_id: str = "o-1") -> SubmitOrder:
    return SubmitOrder(order_id=order_id, proposal_id="p", pair="BTC/USDT", generation=0,
                       side=Side.BUY, order_type=order_type, reason=ExitReason.ENTRY,
                       amount=amount, bid=59_999.99, ask=60_000.01, ts_ms=1_000,
                       limit_price=limit)


def test_an_order_is_recorded_new_rounded_and_then_handed_to_the_gateway() -> None:
    """The NEW intent carries the rounded amount and limit; the gateway gets the same."""
    gateway = FakeGateway()
    core = LiveExecutionCore(gateway, RULES)
    out = core.handle(submit(0.012345, OrderType.LIMIT, limit=59_000.019))
    assert [e.to for e in out] == [STATE]
    intent = out[0].message.order
    assert (intent.status, intent.amount, intent.limit_price) == (OrderStatus.NEW, 0.0123,
                                                                  59_000.01)
    assert gateway.sent == [intent]


def test_an_order_below_the_exchange_minimum_is_rejected_without_a_request() -> None:
    """Too small for the exchange: NEW then REJECTED with the reason; nothing is sent."""
    gateway = FakeGateway()
    core = LiveExecutionCore(gateway, RULES)
    out = core.handle(submit(0.00005))
    statuses = [e.message.order.status for e in out if isinstance(e.message, OrderUpdated)]
    assert statuses == [OrderStatus.NEW, OrderStatus.REJECTED]
    assert out[1].message.order.reject_reason.startswith("below_lot_size")
    out = core.handle(submit(0.0001, order_id="o-2"))
    assert out[1].message.order.reject_reason.startswith("below_min_notional")
    assert gateway.sent == []


def test_a_replayed_submit_is_sent_once() -> None:
    gateway = FakeGateway()
    core = LiveExecutionCore(gateway, RULES)
    core.handle(submit(0.01))
    assert core.handle(submit(0.01)) == []
    assert len(gateway.sent) == 1


def test_cancels_balances_and_close_go_to_the_gateway() -> None:
    gateway = FakeGateway()
    core = LiveExecutionCore(gateway, RULES)
    core.handle(CancelOrder(order_id="o-1", pair="BTC/USDT", ts_ms=1))
    core.handle(CancelPairOrders(pair="BTC/USDT", ts_ms=1))
    assert gateway.cancels == [("o-1", "BTC/USDT"), ("*", "BTC/USDT")]
    assert core.answer(GetBalances()) == {"USDT": 5.0}
    assert core.tick_pairs == frozenset()
    core.close()
    assert gateway.closed


def test_a_refusal_repeated_within_a_minute_is_not_recorded_again() -> None:
    """The same too-small order again: risk and the pair hear it, the database does not."""
    core = LiveExecutionCore(FakeGateway(), RULES)
    first = core.handle(submit(0.00005, order_id="o-1"))
    assert {e.to for e in first} == {STATE}
    again = core.handle(attrs.evolve(submit(0.00005, order_id="o-2"), ts_ms=30_000))
    assert [e.to for e in again] == [RISK, "BTC/USDT"]
    assert again[0].message.order.status is OrderStatus.REJECTED
    assert isinstance(again[1].message, OrderRejected)
    assert again[1].message.reason == "below_lot_size"
    later = core.handle(attrs.evolve(submit(0.00005, order_id="o-3"), ts_ms=70_000))
    assert {e.to for e in later} == {STATE}
