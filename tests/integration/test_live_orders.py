"""Live orders through the real ccxt gateway against the loopback fake Binance.

The whole system in live mode is in ``test_live_system.py``. Every test ends by checking that
the fake's ledger and ours agree: one order per client id at the exchange, the fills we booked
are exactly the exchange's trades of that order, rejected orders carry the exchange's reason.
Retry delays are milliseconds; nothing sleeps to synchronise (waits are on conditions with
timeouts).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from actors.exchange.client import Credentials
from actors.execution.gateway import CcxtGateway
from actors.messages import (
    ExitReason,
    Fill,
    FillReplaced,
    Order,
    OrderFilled,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
)
from supervision.config import ExchangeSettings
from tests.fake_exchange import FakeBinance
from tests.helpers import eventually

MARKETS = {"BTC/USDT": {"price": 60_000}, "ETH/USDT": {"price": 3_000}}
ORDER_PATH = "/api/v3/order"


def ccxt_table(fake: FakeBinance, timeout_ms: int = 400) -> dict[str, Any]:
    config = fake.ccxt_config()
    return {"urls": config["urls"], "options": config["options"], "enableRateLimit": False,
            "timeout": timeout_ms}


def settings(fake: FakeBinance, timeout_ms: int = 400, **over: Any) -> ExchangeSettings:
    values: dict[str, Any] = {"ccxt": ccxt_table(fake, timeout_ms), "order_retries": 5,
                              "retry_initial_s": 0.01, "retry_max_s": 0.05,
                              "limit_timeout_s": 30.0}
    values.update(over)
    return ExchangeSettings(**values)


class Sink:
    """Stands in for the state actor: collects what the gateway tells it."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self._cond = threading.Condition()

    def tell(self, _to: str, message: object) -> None:
        with self._cond:
            self.events.append(message)
            self._cond.notify_all()

    def last(self, order_id: str) -> Order | None:
        with self._cond:
            updates = [e.order for e in self.events
                       if isinstance(e, OrderUpdated) and e.order.order_id == order_id]
        return updates[-1] if updates else None

    def fills(self, order_id: str) -> list[Fill]:
        with self._cond:
            return [e.fill for e in self.events
                    if isinstance(e, OrderFilled) and e.fill.order_id == order_id]

    def wait_terminal(self, order_id: str, timeout: float = 10.0) -> Order:
        def done() -> bool:
            last = self.last(order_id)
            return last is not None and last.status.is_terminal
        with self._cond:
            if not self._cond.wait_for(done, timeout):
                pytest.fail(f"order {order_id} did not finish within {timeout} s: "
                            f"{self.last(order_id)}")
        final = self.last(order_id)
        assert final is not None
        return final


@contextlib.contextmanager
def gateway_on(fake: FakeBinance, timeout_ms: int = 400, **over: Any
               ) -> Iterator[tuple[CcxtGateway, Sink]]:
    sink = Sink()
    gateway = CcxtGateway("binance", settings(fake, timeout_ms, **over),
                          Credentials(api_key=fake.api_key, secret=fake.secret), sink.tell,
                          seed=7).start()
    try:
        yield gateway, sink
    finally:
        gateway.close()


def intent(order_id: str, pair: str = "BTC/USDT", side: Side = Side.BUY,
           order_type: OrderType = OrderType.MARKET, amount: float = 0.01,
           limit: float | None = None) -> Order:
    now = int(time.time() * 1000)
    return Order(order_id=order_id, pair=pair, side=side, order_type=order_type,
                 reason=ExitReason.ENTRY, amount=amount, status=OrderStatus.NEW,
                 created_ms=now, updated_ms=now, limit_price=limit)


def assert_agrees(fake: FakeBinance, order_id: str, fills: list[Fill]) -> None:
    """One order per client id at the fake, and our fills are its trades, each once."""
    placed = [o for o in fake.orders() if o.client_order_id == order_id]
    assert len(placed) <= 1, f"{order_id} placed {len(placed)} times"
    trades = [t for t in fake.my_trades() if t.client_order_id == order_id]
    assert sorted(f.fill_id for f in fills) == sorted(f"{order_id}-t{t.trade_id}"
                                                      for t in trades)
    assert len({f.fill_id for f in fills}) == len(fills)
    exchange_qty = sum(float(t.qty) for t in trades)
    # a buy's fee in base is booked as a smaller amount: add it back to compare
    ours = sum(f.amount + (f.fee / f.price if f.side is Side.BUY else 0.0) for f in fills)
    assert ours == pytest.approx(exchange_qty, rel=1e-9, abs=1e-12)


# -- the gateway alone ---------------------------------------------------------------------------


def test_a_market_order_fills_once_and_its_fill_is_the_exchange_trade() -> None:
    """A market buy becomes one order at the fake and one fill from its trade id."""
    with FakeBinance(MARKETS, {"USDT": 10_000}, fee_rate=0.001) as fake, \
            gateway_on(fake) as (gateway, sink):
        gateway.submit(intent("o-plain-1"))
        final = sink.wait_terminal("o-plain-1")
        assert final.status is OrderStatus.FILLED
        assert final.filled == pytest.approx(0.01)
        assert_agrees(fake, "o-plain-1", sink.fills("o-plain-1"))


CREATE_FAULTS = [
    pytest.param("http_429", {"retry_after": 0}, id="http_429"),
    pytest.param("http_418", {"retry_after": 0}, id="http_418"),
    pytest.param("http_5xx", {}, id="http_5xx-not-executed"),
    pytest.param("http_5xx", {"process": True, "status": 502}, id="http_5xx-executed"),
    pytest.param("malformed_json", {}, id="malformed_json-not-executed"),
    pytest.param("malformed_json", {"process": True}, id="malformed_json-executed"),
    pytest.param("accept_then_timeout", {"delay": 2.0}, id="accept_then_timeout"),
]


@pytest.mark.parametrize(("fault", "options"), CREATE_FAULTS)
def test_a_create_that_fails_is_placed_exactly_once(fault: str, options: dict[str, Any]) -> None:
    """Whatever happens to the create, the exchange ends with one order and we with its fills."""
    with FakeBinance(MARKETS, {"USDT": 10_000}, fee_rate=0.001) as fake, \
            gateway_on(fake) as (gateway, sink):
        fake.inject(fault, ORDER_PATH, method="POST", **options)
        gateway.submit(intent("o-fault-1"))
        final = sink.wait_terminal("o-fault-1")
        assert final.status is OrderStatus.FILLED
        assert len([o for o in fake.orders() if o.client_order_id == "o-fault-1"]) == 1
        assert_agrees(fake, "o-fault-1", sink.fills("o-fault-1"))
        if fault in ("accept_then_timeout", "http_5xx", "malformed_json"):
            lookups = [r for r in fake.requests if r.method == "GET" and r.path == ORDER_PATH
                       and r.get("origClientOrderId") == "o-fault-1"]
            assert lookups, "an ambiguous failure must be looked up before any resend"


@pytest.mark.parametrize(("executed", "status"), [(True, OrderStatus.FILLED),
                                                   (False, OrderStatus.REJECTED)])
def test_an_order_in_doubt_is_resolved_once_the_exchange_answers(
        executed: bool, status: OrderStatus) -> None:
    """Create and look-ups all fail: the gateway keeps asking, then follows the order it
    finds, or rejects it as never placed; never a second create."""
    with FakeBinance(MARKETS, {"USDT": 10_000}) as fake, gateway_on(fake) as (gateway, sink):
        if executed:
            fake.inject("accept_then_timeout", ORDER_PATH, method="POST", delay=2.0)
        else:
            fake.inject("http_5xx", ORDER_PATH, method="POST")
        fake.inject("http_5xx", ORDER_PATH, method="GET", times=9)
        gateway.submit(intent("o-doubt"))
        final = sink.wait_terminal("o-doubt")
        assert final.status is status
        assert len([r for r in fake.requests if r.method == "POST"]) == 1
        if not executed:
            assert final.reject_reason.startswith("never_placed")
        assert_agrees(fake, "o-doubt", sink.fills("o-doubt"))


def test_a_rate_limit_waits_at_least_its_retry_after() -> None:
    """A 429 with Retry-After: 1 delays the next create by a second, not by the backoff."""
    with FakeBinance(MARKETS, {"USDT": 10_000}) as fake, gateway_on(fake) as (gateway, sink):
        fake.inject("http_429", ORDER_PATH, method="POST", retry_after=1)
        gateway.submit(intent("o-429"))
        sink.wait_terminal("o-429")
        posts = [r.time_ms for r in fake.requests if r.method == "POST"]
        assert len(posts) == 2
        assert posts[1] - posts[0] >= 950


def test_rejections_carry_the_exchanges_reason_and_are_never_retried() -> None:
    """Insufficient balance and a filter failure end REJECTED with the exchange's message."""
    with FakeBinance(MARKETS, {"USDT": 100}) as fake, gateway_on(fake) as (gateway, sink):
        gateway.submit(intent("o-poor", amount=0.01))
        poor = sink.wait_terminal("o-poor")
        fake.inject("insufficient_balance", ORDER_PATH)
        gateway.submit(intent("o-forced", pair="ETH/USDT", amount=0.01))
        forced = sink.wait_terminal("o-forced")
        gateway.submit(intent("o-tiny", pair="ETH/USDT", amount=0.000011))
        tiny = sink.wait_terminal("o-tiny")
        for order in (poor, forced):
            assert order.status is OrderStatus.REJECTED
            assert "insufficient balance" in order.reject_reason
            assert order.reject_reason.startswith("InsufficientFunds")
        assert tiny.status is OrderStatus.REJECTED
        assert "NOTIONAL" in tiny.reject_reason
        assert fake.orders() == []
        assert len([r for r in fake.requests if r.method == "POST"]) == 3


def test_partial_fills_through_failing_polls_are_booked_once_each() -> None:
    """A resting limit filled in two parts while polls fail: two fills, FILLED, no repeats."""
    with FakeBinance(MARKETS, {"USDT": 10_000}) as fake, gateway_on(fake) as (gateway, sink):
        gateway.submit(intent("o-limit", order_type=OrderType.LIMIT, amount=0.02,
                              limit=59_000.0))
        eventually(lambda: (sink.last("o-limit") or intent("x")).status is OrderStatus.OPEN,
                   5, "the limit to rest")
        fake.inject("malformed_json", ORDER_PATH, method="GET", times=2)
        fake.inject("http_5xx", "/api/v3/myTrades", times=2)
        fake.trade("BTC/USDT", 58_990, 0.008, side="sell")
        eventually(lambda: (sink.last("o-limit") or intent("x")).filled > 0, 5,
                   "the partial fill")
        fake.set_price("BTC/USDT", 58_900)
        final = sink.wait_terminal("o-limit")
        assert final.status is OrderStatus.FILLED
        fills = sink.fills("o-limit")
        assert len(fills) == 2
        assert_agrees(fake, "o-limit", fills)


def test_an_unfilled_limit_is_cancelled_after_its_timeout_keeping_its_partial_fill() -> None:
    """A limit that rests past limit_timeout_s is cancelled; what filled stays booked."""
    with FakeBinance(MARKETS, {"USDT": 10_000}) as fake, \
            gateway_on(fake, limit_timeout_s=0.5) as (gateway, sink):
        gateway.submit(intent("o-stale", order_type=OrderType.LIMIT, amount=0.02,
                              limit=59_000.0))
        eventually(lambda: sink.last("o-stale") is not None, 5, "the limit to rest")
        fake.trade("BTC/USDT", 58_990, 0.005, side="sell")
        final = sink.wait_terminal("o-stale")
        assert final.status is OrderStatus.CANCELED
        assert final.filled == pytest.approx(0.005)
        assert [o.status for o in fake.orders()] == ["CANCELED"]
        assert_agrees(fake, "o-stale", sink.fills("o-stale"))


def test_a_cancel_request_cancels_the_resting_order() -> None:
    """``cancel`` reaches the exchange and the order ends CANCELED."""
    with FakeBinance(MARKETS, {"USDT": 10_000}) as fake, gateway_on(fake) as (gateway, sink):
        gateway.submit(intent("o-cxl", order_type=OrderType.LIMIT, limit=59_000.0))
        eventually(lambda: sink.last("o-cxl") is not None, 5, "the limit to rest")
        gateway.cancel("o-cxl", "BTC/USDT")
        assert sink.wait_terminal("o-cxl").status is OrderStatus.CANCELED


def test_a_cancel_that_keeps_failing_is_tried_again_until_it_lands() -> None:
    """Every retry of the timed-out limit's cancel fails; the next poll cancels again."""
    with FakeBinance(MARKETS, {"USDT": 10_000}) as fake, \
            gateway_on(fake, limit_timeout_s=0.2) as (gateway, sink):
        fake.inject("http_5xx", ORDER_PATH, method="DELETE", times=8)
        gateway.submit(intent("o-stubborn", order_type=OrderType.LIMIT, limit=59_000.0))
        assert sink.wait_terminal("o-stubborn").status is OrderStatus.CANCELED
        deletes = [r for r in fake.requests if r.method == "DELETE"]
        assert len(deletes) == 9
        assert [o.status for o in fake.orders()] == ["CANCELED"]


def test_one_pairs_slow_order_does_not_delay_another_pairs_order() -> None:
    """While BTC's create hangs for 2 s at the exchange, ETH's order is placed and filled."""
    with FakeBinance(MARKETS, {"USDT": 10_000}) as fake, \
            gateway_on(fake, timeout_ms=5_000) as (gateway, sink):
        fake.inject("accept_then_timeout", ORDER_PATH, method="POST", delay=2.0)
        gateway.submit(intent("o-slow-btc"))
        eventually(lambda: any(r.method == "POST" for r in fake.requests), 5, "BTC's create")
        started = time.monotonic()
        gateway.submit(intent("o-fast-eth", pair="ETH/USDT", amount=0.1))
        assert sink.wait_terminal("o-fast-eth").status is OrderStatus.FILLED
        assert time.monotonic() - started < 1.5
        assert sink.last("o-slow-btc") is None, "BTC answered before its delay"
        assert sink.wait_terminal("o-slow-btc").status is OrderStatus.FILLED


def test_a_filled_order_whose_trades_do_not_appear_is_booked_inferred_then_replaced() -> None:
    """The exchange lists no trades: after the grace period the order is FILLED with one
    inferred fill worth the exchange's cumulative quote; when the trades appear they replace
    it, and the fills are exactly the exchange's trades."""
    with FakeBinance(MARKETS, {"USDT": 10_000}, fee_rate=0.001) as fake, \
            gateway_on(fake, infer_fill_after_s=0.3) as (gateway, sink):
        fake.inject("hide_trades", times=None)
        gateway.submit(intent("o-late-1"))
        final = sink.wait_terminal("o-late-1")
        [placed] = fake.orders()
        assert (final.status, final.filled) == (OrderStatus.FILLED, float(placed.executed_qty))
        [inferred] = sink.fills("o-late-1")
        assert inferred.fill_id == "o-late-1-inferred"
        assert inferred.amount * inferred.price == pytest.approx(
            float(placed.cumulative_quote_qty))
        fake.clear_faults()

        def replaced() -> list[FillReplaced]:
            return [e for e in list(sink.events) if isinstance(e, FillReplaced)]
        eventually(lambda: replaced() != [], 10, "the trades to replace the inferred fill")
        [swap] = replaced()
        assert swap.inferred == inferred
        assert_agrees(fake, "o-late-1", list(swap.fills))


def test_a_garbled_balance_reply_at_reconciliation_is_asked_again_not_read_as_zero() -> None:
    """ccxt turns a 200 whose body is not JSON into an empty balance; reconciliation asks
    again instead of reporting every asset as gone."""
    with FakeBinance(MARKETS, {"USDT": 10_000}) as fake, gateway_on(fake) as (gateway, _sink):
        fake.inject("malformed_json", "/api/v3/account", times=2)
        report = gateway.reconcile([], {}, {"USDT": 10_000.0}, ["BTC/USDT"])
        assert report.balance_differences == ()
        assert fake.pending_faults() == []
